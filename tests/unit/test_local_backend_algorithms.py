"""tpe and random as stock Katib serves them (hyperopt), mapped onto Optuna; CMA-ES's restart_strategy.

Facts from Katib v0.19.0: pkg/suggestion/v1beta1/hyperopt/service.py (tpe takes random_state, gamma,
prior_weight and n_EI_candidates; any other setting fails the Experiment),
cmd/suggestion/hyperopt/v1beta1/requirements.txt (hyperopt==0.2.5, whose tpe.suggest starts with 20
random trials and splits good/bad at ceil(gamma * sqrt(n)), at most 25), pkg/suggestion/v1beta1/optuna/
service.py (multivariate-tpe takes n_startup_trials, n_ei_candidates) and
cmd/suggestion/optuna/v1beta1/requirements.txt (optuna==3.3.0, which still restarted CMA-ES).
"""

from __future__ import annotations

import math

import pytest
from optuna.samplers._tpe.sampler import hyperopt_default_gamma

from components.core.errors import UserError
from katib.backends.local.samplers import create_sampler

X = {"name": "x", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}
Y = {"name": "y", "parameterType": "double", "feasibleSpace": {"min": "0", "max": "1"}}


def test_tpe_takes_hyperopts_settings_as_optunas() -> None:
    sampler = create_sampler("tpe", {"gamma": "0.5", "prior_weight": "2.0", "n_EI_candidates": "30",
                                     "random_state": "1"}, (X,))
    assert sampler._parzen_estimator_parameters.prior_weight == 2.0
    assert sampler._n_ei_candidates == 30
    assert [sampler._gamma(n) for n in (1, 16, 100, 10_000)] == [1, 2, 5, 25]


def test_tpe_defaults_are_hyperopts() -> None:
    sampler = create_sampler("tpe", {}, (X,))
    assert sampler._n_startup_trials == 20
    assert all(sampler._gamma(n) == hyperopt_default_gamma(n) == min(math.ceil(0.25 * math.sqrt(n)), 25)
               for n in range(1, 3000, 37))


def test_n_startup_trials_is_refused_for_tpe_as_katib_refuses_it() -> None:
    with pytest.raises(UserError, match="unknown setting 'n_startup_trials' for algorithm 'tpe'"):
        create_sampler("tpe", {"n_startup_trials": "5"}, (X,))
    assert create_sampler("multivariate-tpe", {"n_startup_trials": "5"}, (X,))._n_startup_trials == 5


@pytest.mark.parametrize(("name", "value"), [("gamma", "1.5"), ("prior_weight", "0"), ("n_EI_candidates", "0")])
def test_out_of_range_settings_are_refused(name: str, value: str) -> None:
    with pytest.raises(UserError, match=f"setting {name}={value!r} of algorithm 'tpe'"):
        create_sampler("tpe", {name: value}, (X,))


def test_cmaes_ipop_is_refused_with_the_reason() -> None:
    with pytest.raises(UserError) as raised:
        create_sampler("cmaes", {"restart_strategy": "ipop"}, (X, Y))
    message = str(raised.value)
    assert "\n" not in message and "ignores restart_strategy (since Optuna 4.4)" in message
    assert create_sampler("cmaes", {"restart_strategy": "none"}, (X, Y)) is not None
