"""The sweeps as data (components/sweeps.py): grid sizes, the study's numbering and figures, the chain."""

import pytest

from components.core.errors import UserError
from components.sweeps import (
    ACTIVATION_SWEEP,
    FILTER_SWEEP,
    OPTIMIZER_SWEEP,
    SWEEPS,
    Parameter,
    Sweep,
    earlier,
    register,
    start_settings,
    study_fixed,
    swept_settings,
)
from tests.fixtures.trials.fourth_sweep import fourth_sweep


def test_grid_sizes_are_8_81_81():
    assert [s.grid_size for s in SWEEPS.values()] == [8, 81, 81]
    assert [len(s.grid()) for s in SWEEPS.values()] == [8, 81, 81]


def test_the_studys_combination_numbers():
    # "combination 68" of the activation sweep, "combination 54" of the filter sweep (1-based).
    assert ACTIVATION_SWEEP.combination_at(67) == ("selu", "relu", "relu", "relu")
    assert ACTIVATION_SWEEP.index_of(("selu", "relu", "relu", "relu")) == 67
    assert FILTER_SWEEP.combination_at(53) == ("32", "64", "64", "64")
    assert FILTER_SWEEP.index_of((32, 64, 64, 64)) == 53


def test_index_and_combination_are_inverse_over_the_whole_grid():
    for sweep in SWEEPS.values():
        for i, combo in enumerate(sweep.grid()):
            assert sweep.index_of(combo) == i
            assert sweep.combination_at(i) == combo


def test_bad_combination_is_refused():
    with pytest.raises(UserError, match="activation2=tanh"):
        ACTIVATION_SWEEP.index_of(("relu", "tanh", "relu", "relu"))
    with pytest.raises(UserError, match="expected 0..80"):
        FILTER_SWEEP.combination_at(81)


def test_assignments_become_trial_settings():
    assert OPTIMIZER_SWEEP.settings({"optimizer": "Nadam"}) == {"optimizer": "Nadam"}
    assigned = {"activation1": "selu", "activation2": "relu", "activation3": "elu", "activation4": "relu"}
    assert ACTIVATION_SWEEP.settings(assigned) == {"activations": "selu,relu,elu,relu"}


def test_the_studys_figures_are_points_of_the_grids():
    assert OPTIMIZER_SWEEP.study.best == ("Nadam",) and OPTIMIZER_SWEEP.study.accuracy == 0.9305
    assert ACTIVATION_SWEEP.study.index == ACTIVATION_SWEEP.index_of(ACTIVATION_SWEEP.study.best) == 67
    assert FILTER_SWEEP.study.index == FILTER_SWEEP.index_of(FILTER_SWEEP.study.best) == 53
    assert (ACTIVATION_SWEEP.study.accuracy, FILTER_SWEEP.study.accuracy) == (0.9337, 0.9338)


def test_each_winner_feeds_the_next_sweep():
    assert [s.after for s in SWEEPS.values()] == [None, "optimizer", "activations"]
    assert [s.name for s in earlier("filters")] == ["optimizer", "activations"]
    # Before any sweep has run: the hand-written CNN's settings.
    assert start_settings() == {"optimizer": "Adam", "activations": "relu,relu,relu,relu", "filters": "32,32,64,64"}
    # The checked-in manifests' fixed settings: the study's winners of the stages before.
    assert study_fixed("optimizer") == start_settings()
    assert study_fixed("filters") == {"optimizer": "Nadam", "activations": "selu,relu,relu,relu",
                                      "filters": "32,32,64,64"}
    assert swept_settings() == ("optimizer", "activations", "filters")
    assert [s.flag for s in SWEEPS.values()] == ["--optimizer", "--activations", "--filters"]


def test_a_fourth_sweep_joins_the_chain_by_its_definition():
    with fourth_sweep() as sweep:
        assert list(SWEEPS) == ["optimizer", "activations", "filters", "batch_size"]
        assert [s.name for s in earlier("batch_size")] == ["optimizer", "activations", "filters"]
        assert sweep.flag == "--batch-size" and sweep.grid_size == 2
        # No start value: the earlier sweeps' trials keep the profile's batch size.
        assert "batch_size" not in start_settings() and "batch_size" in swept_settings()
        assert study_fixed("batch_size")["filters"] == "32,64,64,64"
        assert sweep.assignments_from({"batch_size": 64}) == {"batch_size": "64"}
    assert list(SWEEPS) == ["optimizer", "activations", "filters"]


def _sweep(**changes) -> Sweep:
    fields = dict(name="dropout", title="t", label="l", description="d", setting="epochs",
                  parameters=(Parameter("epochs", "discrete", ("1", "2")),), after="filters")
    return Sweep(**{**fields, **changes})


@pytest.mark.parametrize(("changes", "message"), [
    ({"name": "filters"}, "sweep filters: defined twice"),
    ({"name": "Drop-out"}, "sweep Drop-out: expected a lower-case name"),
    ({"after": "learning_rate"}, "after='learning_rate': expected one of optimizer, activations, filters"),
    ({"setting": "dropout"}, "setting 'dropout': expected a trial setting, one of optimizer, learning_rate"),
    ({"parameters": (Parameter("epochs", "double", ("1",)),)}, "expected a type of categorical or discrete"),
    ({"parameters": (Parameter("epochs", "discrete", (1, 2)),)}, "a list of string values"),
])
def test_a_bad_definition_is_refused_when_registered(changes, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        register(_sweep(**changes))
    assert list(SWEEPS) == ["optimizer", "activations", "filters"]


def test_a_study_figure_off_its_own_grid_is_refused():
    from components.sweeps import StudyFigure

    with pytest.raises(UserError, match="the study's index 0 is not its best's"):
        register(_sweep(study=StudyFigure(best=("2",), accuracy=0.9, index=0)))
