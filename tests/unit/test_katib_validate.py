"""katib.validate: Katib's admission rules, checked locally and reported all at once.

The package's public API: every valid fixture passes, problems from different checks
add up, and check_experiment raises them on one line. Each check's own rules are
tested beside it (test_katib_validate_<module>.py); the valid fixtures mirror
Katib's own examples (see tests/fixtures/katib/valid/README.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from components.core.errors import UserError
from katib.validate import ExperimentInvalid, check_experiment, load_experiment, validate_experiment
from tests.fixtures.katib_validate import VALID_DIR, VALID_FILES, fixture

# ---------------------------------------------------------------- Katib's examples pass


@pytest.mark.parametrize("path", VALID_FILES, ids=[p.name for p in VALID_FILES])
def test_valid_fixture_has_no_problems(path: Path) -> None:
    assert validate_experiment(load_experiment(str(path))) == []


def test_valid_fixtures_cover_katib_features() -> None:
    experiments = [load_experiment(str(p)) for p in VALID_FILES]
    specs = [e["spec"] for e in experiments]
    algorithms = {s["algorithm"]["algorithmName"] for s in specs}
    collectors = {s.get("metricsCollectorSpec", {}).get("collector", {}).get("kind", "StdOut") for s in specs}
    kinds = {s["trialTemplate"].get("trialSpec", {}).get("kind") for s in specs}
    assert {"random", "grid", "tpe", "multivariate-tpe", "cmaes", "sobol",
            "bayesianoptimization", "hyperband"} <= algorithms
    assert {"StdOut", "File", "TensorFlowEvent", "Custom", "Push"} <= collectors
    assert {"Job", "PyTorchJob", "TFJob"} <= kinds
    assert any(s.get("earlyStopping", {}).get("algorithmName") == "medianstop" for s in specs)


def test_fixture_readme_names_every_fixture() -> None:
    readme = (VALID_DIR / "README.md").read_text(encoding="utf-8")
    for path in VALID_FILES:
        assert f"`{path.name}`" in readme


# ---------------------------------------------------------------- problems add up


def test_three_breaks_give_three_problems() -> None:
    experiment = fixture("random.yaml")
    experiment["spec"]["objective"]["type"] = "best"
    del experiment["spec"]["parameters"][1]["feasibleSpace"]["min"]
    experiment["spec"]["resumePolicy"] = "Sometimes"
    problems = validate_experiment(experiment)
    assert len(problems) == 3
    assert any("spec.objective.type" in p for p in problems)
    assert any("spec.parameters[1] (dropout)" in p for p in problems)
    assert any("spec.resumePolicy" in p for p in problems)


def test_not_a_mapping() -> None:
    assert validate_experiment(["not", "an", "experiment"]) == ["Experiment: is a list; expected a mapping"]


# ---------------------------------------------------------------- check_experiment


def test_check_experiment_accepts_valid() -> None:
    assert check_experiment(fixture("grid.yaml")) is None


def test_check_experiment_lists_every_problem_on_one_line() -> None:
    experiment = fixture("random.yaml")
    experiment["spec"]["objective"]["type"] = "best"
    experiment["spec"]["resumePolicy"] = "Sometimes"
    with pytest.raises(ExperimentInvalid) as raised:
        check_experiment(experiment)
    message = str(raised.value)
    assert isinstance(raised.value, UserError)
    assert raised.value.exit_code == 2
    assert "\n" not in message
    assert message.startswith("invalid Experiment seed-cnn-random: spec.objective.type: 'best'")
    assert message.count("; ") >= 1 and "spec.resumePolicy: 'Sometimes'" in message
