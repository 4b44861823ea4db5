"""normal and logNormal feasible spaces, drawn as Katib's hyperopt service draws them.

Facts from Katib v0.19.0, pkg/suggestion/v1beta1/hyperopt/base_service.py (create_hyperopt_domain:
mu = (min + max) / 2 and sigma = (max - min) / 6, on log(min)..log(max) for logNormal; hp.qnormal /
hp.qlognormal with a step; convert: int() of an int parameter's draw), pkg/suggestion/v1beta1/
optuna/base_service.py (no distribution for them) and internal/search_space.py
(convert_to_combinations: the grid reads min, max and step only). The Experiment is shaped like
examples/v1beta1/hp-tuning/hyperopt-distribution.yaml.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import optuna
import pytest

from components.core.errors import UserError
from katib.backends.local.normal_space import normal_parameter
from katib.backends.local.search_space import assignment_string, optuna_search_space, optuna_values
from tests.fixtures.trials.example_experiments import MOMENTUM, example_experiment, run

LR_NORMAL = {"name": "lr", "parameterType": "double",
             "feasibleSpace": {"min": "0.01", "max": "0.05", "step": "0.01", "distribution": "normal"}}
BATCH_LOG_NORMAL = {"name": "batch_size", "parameterType": "int",
                    "feasibleSpace": {"min": "32", "max": "64", "distribution": "logNormal"}}


def draws(parameter: dict, count: int = 4000) -> list[float]:
    """``count`` values as the random algorithm draws them (Optuna's RandomSampler on the quantile)."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    distribution = optuna_search_space((parameter,))[parameter["name"]]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    values = []
    for _ in range(count):
        trial = study.ask({parameter["name"]: distribution})
        values.append(float(assignment_string(parameter, trial.params[parameter["name"]])))
        study.tell(trial, 0.0)
    return values


def test_mu_and_sigma_are_katibs() -> None:
    lr = normal_parameter(LR_NORMAL)
    assert (lr.mu, lr.sigma, lr.log) == (pytest.approx(0.03), pytest.approx(0.04 / 6), False)
    batch = normal_parameter(BATCH_LOG_NORMAL)
    assert batch.log and batch.mu == pytest.approx((math.log(32) + math.log(64)) / 2)
    assert batch.sigma == pytest.approx((math.log(64) - math.log(32)) / 6)


def test_a_normal_double_is_drawn_around_the_middle_on_its_step() -> None:
    values = draws({**LR_NORMAL, "feasibleSpace": {**LR_NORMAL["feasibleSpace"], "step": None}})
    assert statistics.fmean(values) == pytest.approx(0.03, abs=0.0005)
    assert statistics.stdev(values) == pytest.approx(0.04 / 6, rel=0.05)
    stepped = draws(LR_NORMAL, 300)
    # hp.qnormal: round(value / step) * step, written as the decimal it is ("0.03", not "0.030000000000000002").
    assert {round(v * 100) / 100 for v in stepped} == set(stepped)
    assert {"0.03", "0.02", "0.04"} <= {assignment_string(LR_NORMAL, q) for q in (0.5, 0.1, 0.9)}


def test_a_log_normal_int_is_truncated_as_katib_does() -> None:
    values = draws(BATCH_LOG_NORMAL)
    assert all(v == int(v) for v in values)
    logs = [math.log(v + 0.5) for v in values]  # int() truncates: the middle of each value's interval
    assert statistics.fmean(logs) == pytest.approx((math.log(32) + math.log(64)) / 2, abs=0.02)
    # int(), not round(): the quantile of 45.4 gives 45 back.
    batch = normal_parameter(BATCH_LOG_NORMAL)
    assert batch.value(batch.quantile(45.4)) == 45
    assert assignment_string(BATCH_LOG_NORMAL, 0.5) == str(int(math.exp(batch.mu)))


def test_a_recorded_value_goes_back_to_optuna_as_its_quantile() -> None:
    values = optuna_values((LR_NORMAL, BATCH_LOG_NORMAL), [{"name": "lr", "value": "0.04"},
                                                          {"name": "batch_size", "value": "40"}])
    assert assignment_string(LR_NORMAL, values["lr"]) == "0.04"
    assert assignment_string(BATCH_LOG_NORMAL, values["batch_size"]) == "40"


def test_random_and_tpe_run_normal_parameters(tmp_path: Path) -> None:
    for algorithm in ("random", "tpe"):
        experiment = example_experiment(["--logger=stdout"], parameters=[LR_NORMAL, MOMENTUM, BATCH_LOG_NORMAL],
                                        algorithm=algorithm, settings={"random_state": "2"})
        experiment["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"]["containers"][0][
            "command"].remove("--batch_size=${trialParameters.batch_size}")
        experiment["spec"]["trialTemplate"]["trialParameters"].pop()
        result = run(experiment, tmp_path / algorithm)
        assert [t.state for t in result.trials] == ["Succeeded"] * 3
        assert all(round(float(t.assignments[0]["value"]) * 100) == float(t.assignments[0]["value"]) * 100
                   for t in result.trials)


def test_grid_reads_only_min_max_and_step(tmp_path: Path) -> None:
    result = run(example_experiment(["--logger=stdout"], parameters=[LR_NORMAL, MOMENTUM]), tmp_path)
    assert sorted(t.assignments[0]["value"] for t in result.trials) == ["0.01", "0.02", "0.03"]


def test_other_algorithms_refuse_them_in_one_line(tmp_path: Path) -> None:
    second = {"name": "momentum", "parameterType": "double", "feasibleSpace": {"min": "0.1", "max": "0.9"}}
    with pytest.raises(UserError) as raised:
        run(example_experiment([], parameters=[LR_NORMAL, second], algorithm="cmaes"), tmp_path)
    message = str(raised.value)
    assert "\n" not in message and raised.value.exit_code == 2
    assert "distribution 'normal'" in message and "hyperopt service (tpe, random)" in message


def test_log_normal_needs_a_positive_min(tmp_path: Path) -> None:
    bad = {"name": "lr", "parameterType": "double",
           "feasibleSpace": {"min": "0", "max": "0.05", "distribution": "logNormal"}}
    with pytest.raises(UserError, match="logNormal needs min above 0"):
        run(example_experiment([], parameters=[bad, MOMENTUM], algorithm="random"), tmp_path)
