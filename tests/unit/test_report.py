"""The report's rendering: Markdown through markdown-it-py into one page, and the sweep pictures."""

from __future__ import annotations

import html.parser
import itertools
import math

from components.report.figures import OBJECTIVE, grid_heatmap, heatmap_cells, objective_bars, objective_bars_figure
from components.report.render import anchor, render_html, render_markdown
from components.report.section import Section

VALUES = [["elu", "relu", "selu"]] * 4


def grid_summary(n: int = 81) -> dict:
    combos = list(itertools.product(*VALUES))[:n]
    trials = [{"name": f"t{i}", "state": "Succeeded", "combination": list(c), "index": i,
               "val_accuracy": 0.90 + 0.0004 * i} for i, c in enumerate(combos)]
    return {"trials": trials, "values": VALUES, "best_trial": trials[-1]["name"], "best_index": n - 1}


class _Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.text, self.tags, self.images, self.ids, self.links = [], [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.images.append(attrs["src"])
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "a":
            self.links.append(attrs["href"])

    def handle_data(self, data):
        self.text.append(data)


def test_html_is_rendered_markdown_with_a_table_of_contents_and_inlined_figures():
    png = objective_bars(grid_summary(8), "Sweep B", 0.9337, "selu, relu, relu, relu")
    sections = [Section("Data", "Fashion-MNIST from `debian:/usr/share`."),
                Section("Question 2A: optimizers", "Best: **RMSprop** at 90.00%.",
                        [["optimizer", "validation accuracy"], ["RMSprop", "90.00%"], ["Adam", "89.00%"]],
                        {"sweep_optimizer_objective.png": png})]
    page = _Page()
    page.feed(render_html("Study", sections))
    text = "".join(page.text)
    assert "**" not in text and "`" not in text and "![" not in text and "|---" not in text
    assert page.tags.count("strong") == 2  # "Contents" and **RMSprop**
    assert page.tags.count("code") == 1 and page.tags.count("table") == 1
    assert page.images == ["data:image/png;base64," + __import__("base64").b64encode(png).decode()]
    assert [link.lstrip("#") for link in page.links] == page.ids == [anchor(s.title) for s in sections]
    assert anchor("Question 2A: optimizers") == "question-2a-optimizers"
    # The Markdown keeps relative figure links for the report folder.
    assert "![sweep_optimizer_objective.png](sweep_optimizer_objective.png)" in render_markdown("Study", sections)


def test_bars_start_at_zero_and_the_studys_figure_is_drawn():
    figure = objective_bars_figure(grid_summary(8), "Sweep B", 0.9337, "study pick")
    axes = figure.axes[0]
    assert axes.get_xlim()[0] == 0  # an honest axis: no zoom onto 0.90..0.91
    assert [line.get_xdata()[0] for line in axes.get_lines()] == [0.9337]


def test_a_four_layer_three_value_sweep_gets_a_heatmap_and_a_one_parameter_sweep_does_not():
    assert grid_heatmap(grid_summary(81), "Sweep B", ("selu", "relu", "relu", "relu")).startswith(b"\x89PNG")
    assert grid_heatmap(grid_summary(3), "Sweep B", None).startswith(b"\x89PNG")  # partly run: blanks
    optimizer = {"trials": [{"name": "a", "combination": ["Adam"], "index": 0, "val_accuracy": 0.9}],
                 "values": [["Adam", "Nadam"]], "best_index": 0}
    assert grid_heatmap(optimizer, "Sweep A", None) is None
    assert grid_heatmap({"trials": [], "values": VALUES}, "Sweep B", None) is None


def test_a_grid_point_run_more_than_once_shows_its_best_whichever_ran_last():
    # Hyperband's promoted trial and pbt's children run a grid point again: the map keeps its best.
    trials = [{"index": 4, OBJECTIVE: 0.70}, {"index": 4, OBJECTIVE: 0.80}, {"index": 4, OBJECTIVE: 0.75},
              {"index": 1, OBJECTIVE: None}, {"index": 2, OBJECTIVE: 0.60}]
    cells = heatmap_cells(trials, 3, 3)
    assert cells[1][1] == 0.80 and cells[0][2] == 0.60
    assert sum(not math.isnan(v) for row in cells for v in row) == 2


def _artifacts(tmp_path, train: int, epochs: int, accuracy: float):
    import json

    for name, content in (("data", {"counts": {"train": train, "val": 600, "test": 2000}}),
                          ("model", {"epochs": epochs, "config": {"bn_momentum": 0.9 if epochs < 10 else 0.99}}),
                          ("eval", {"test_accuracy": accuracy})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metadata.json" if name == "data" else tmp_path / name / "metrics.json").write_text(
            json.dumps(content))
    return str(tmp_path / "data"), str(tmp_path / "model"), str(tmp_path / "eval")


def test_a_small_run_says_so_first_with_its_distance_from_the_study(tmp_path):
    from components.report.document import run_scale_note

    note = run_scale_note(*_artifacts(tmp_path, 5400, 3, 0.8712))
    assert note.startswith("**A small run, made to show the flow.**")
    assert "The hand-written CNN trained on 5,400 images for 3 epochs;" in note
    assert "the study trained on 54,000 images for 10 epochs" in note
    assert "87.12% here against the study's 92.43% (-5.3 pp)" in note
    assert "momentum is 0.9 here, not the study's (Keras') 0.99" in note


def test_the_small_run_note_gives_the_sweep_trials_own_sizes(tmp_path):
    # The smoke profile's sweep trials train on fewer images and epochs than its CNN: the note says so,
    # from what the trials recorded (each row's history and training_images), in words without "(s)".
    from components.report.document import run_scale_note

    uris = {"optimizer": _write_summary(tmp_path, "optimizer", [(("Nadam",), 0.72), (("Adam",), 0.71)], START,
                                        history=[0.72], training_images=2700)}
    note = run_scale_note(*_artifacts(tmp_path, 5400, 5, 0.8685), sweep_uris=uris)
    assert ("The hand-written CNN trained on 5,400 images for 5 epochs; each sweep trial on 2,700 images for "
            "1 epoch; the study trained on 54,000 images for 10 epochs") in note
    assert "(s)" not in note
    # A study-sized CNN beside small sweep trials is still a small run.
    full = tmp_path / "full"
    full.mkdir()
    assert run_scale_note(*_artifacts(full, 54000, 10, 0.9130), sweep_uris=uris).startswith("**A small run")


def test_a_run_of_the_studys_size_has_no_such_note(tmp_path):
    from components.report.document import run_scale_note

    assert run_scale_note(*_artifacts(tmp_path, 54000, 10, 0.9130)) is None


def _write_summary(tmp_path, stage: str, trials: list[tuple[tuple, float | None]], fixed: dict,
                   **recorded) -> str:
    """A sweep's summary.json as katib.sweep.summarize writes it: (combination, val_accuracy) per trial;
    ``recorded``: what each trial's metrics.json gave its row (history, training_images)."""
    import json

    from components.sweeps import get_sweep

    sweep = get_sweep(stage)
    rows = [{"name": f"{stage}-{i}", "state": "Succeeded" if acc is not None else "Failed",
             "reason": "TrialSucceeded" if acc is not None else "TrialFailed", "combination": list(combo),
             "index": sweep.index_of(combo), "val_accuracy": acc, **(recorded if acc is not None else {})}
            for i, (combo, acc) in enumerate(trials)]
    best = max((r for r in rows if r["val_accuracy"] is not None), key=lambda r: r["val_accuracy"])
    summary = {"stage": stage, "fixed": fixed, "best": {**fixed, sweep.setting: ",".join(best["combination"])},
               "best_combination": best["combination"], "best_index": best["index"], "best_trial": best["name"],
               "val_accuracy": best["val_accuracy"], "grid_size": sweep.grid_size,
               "parameters": [p.name for p in sweep.parameters], "values": [list(p.values) for p in sweep.parameters],
               "condition": "Succeeded", "reason": "ExperimentMaxTrialsReached", "trials": rows}
    folder = tmp_path / stage
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps(summary))
    return str(folder)


START = {"optimizer": "Adam", "activations": "relu,relu,relu,relu", "filters": "32,32,64,64"}


def test_each_sweep_gets_its_section_from_its_definition_beside_the_studys_figure(tmp_path):
    from components.report.document import sweep_sections

    uris = {"activations": _write_summary(tmp_path, "activations", [(("selu", "relu", "relu", "relu"), 0.91),
                                                                    (("elu", "elu", "elu", "elu"), 0.90)],
                                          {**START, "optimizer": "Nadam"}),
            "optimizer": _write_summary(tmp_path, "optimizer", [(("Nadam",), 0.92), (("Ftrl",), None)], START)}
    optimizer, activations = sweep_sections(uris)  # in chain order, whatever the order given
    assert optimizer.title == "Question 2A: optimizers"
    assert optimizer.intro == ("Best: **Nadam** at 92.00% (study: Nadam at 93.05%; Ftrl at its default settings "
                               "stayed near 10% in the study). 2 of 8 grid points ran; Succeeded: "
                               "ExperimentMaxTrialsReached.")
    # The study's figure beside ours: its winner's row carries it.
    assert optimizer.table == [["optimizer", "validation accuracy", "trial state", "study"],
                               ["Nadam", "92.00%", "Succeeded", "93.05% (its best)"],
                               ["Ftrl", "—", "Failed (TrialFailed)", "—"]]
    assert set(optimizer.figures) == {"sweep_optimizer_objective.png", "sweep_optimizer_parallel.png"}
    assert activations.title == "Question 2B: activations per conv layer"
    assert activations.intro.startswith("With optimizer Nadam, filters 32,32,64,64 held fixed: 2 of 81 combinations")
    assert activations.table[1:] == [["ours", "selu, relu, relu, relu", "67 (combination 68)", "91.00%"],
                                     ["study", "selu, relu, relu, relu", "67 (combination 68)", "93.37%"]]
    assert set(activations.figures) == {"sweep_activations_objective.png", "sweep_activations_heatmap.png",
                                        "sweep_activations_parallel.png"}  # no histories in these summaries: no curves


def test_a_fourth_sweep_gets_a_section_by_its_definition_alone(tmp_path):
    from components.report.document import sweep_sections
    from tests.fixtures.trials.fourth_sweep import fourth_sweep

    winners = {"optimizer": "Nadam", "activations": "selu,relu,relu,relu", "filters": "32,64,64,64"}
    with fourth_sweep():
        (section,) = sweep_sections({"batch_size": _write_summary(
            tmp_path, "batch_size", [(("32",), 0.90), (("64",), 0.91)], winners)})
    assert section.title == "Question 2D: batch size"
    assert section.intro == ("Best: **64** at 91.00%. With optimizer Nadam, activations selu,relu,relu,relu, filters "
                             "32,64,64,64 held fixed: 2 of 2 grid points ran; Succeeded: ExperimentMaxTrialsReached.")
    assert section.table[0] == ["batch_size", "validation accuracy", "trial state"]
    assert set(section.figures) == {"sweep_batch_size_objective.png",  # one parameter: no heatmap
                                    "sweep_batch_size_parallel.png"}


def test_a_search_that_runs_a_point_again_says_how_many_points_its_trials_ran(tmp_path):
    from components.report.document import sweep_sections

    selu, elu = ("selu", "relu", "relu", "relu"), ("elu", "elu", "elu", "elu")
    (section,) = sweep_sections({"activations": _write_summary(  # hyperband promoted selu's trial: it ran twice
        tmp_path, "activations", [(selu, 0.88), (elu, 0.87), (selu, 0.91)], {**START, "optimizer": "Nadam"})})
    assert section.intro == ("With optimizer Nadam, filters 32,32,64,64 held fixed: 3 trials ran 2 of the 81 "
                             "combinations; Succeeded: ExperimentMaxTrialsReached.")


def test_an_unknown_sweep_is_refused(tmp_path):
    import pytest

    from components.core.errors import UserError
    from components.report.document import sweep_sections

    with pytest.raises(UserError, match="sweep 'dropout': expected one of optimizer, activations, filters"):
        sweep_sections({"dropout": str(tmp_path)})


def test_any_grid_of_two_or_more_parameters_is_a_heatmap_rows_first_half_columns_the_rest():
    from components.report.figures import heatmap_split

    assert heatmap_split(VALUES) == 2  # 9 x 9: layers 1-2 down, 3-4 across
    assert heatmap_split([["a", "b"], ["x", "y", "z"]]) == 1
    assert heatmap_split([["a", "b"]] * 3) == 1  # 2 x 4
    assert heatmap_split([["Adam", "Nadam"]]) is None
    assert heatmap_split([[str(i) for i in range(31)], ["a", "b"]]) is None  # too long a side to read
    values = [["16", "32"], ["relu", "elu", "selu"]]
    trials = [{"name": f"t{i}", "combination": list(c), "index": i, "val_accuracy": 0.8 + 0.01 * i}
              for i, c in enumerate(itertools.product(*values))]
    summary = {"trials": trials, "values": values, "parameters": ["width", "activation"], "best_index": 5}
    assert grid_heatmap(summary, "Sweep E", ("32", "elu")).startswith(b"\x89PNG")


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_learning_curves_show_the_best_trials_that_recorded_a_history(tmp_path):
    """Issue #16: learning curves of the top trials, from each trial's own per-epoch history."""
    import json

    from components.report import figures
    from components.report.document import sweep_sections

    trials = [(("selu", "relu", "relu", "relu"), 0.91), (("elu", "elu", "elu", "elu"), 0.90),
              (("relu", "relu", "relu", "relu"), 0.89), (("elu", "relu", "relu", "relu"), None)]
    uri = _write_summary(tmp_path, "activations", trials, {**START, "optimizer": "Nadam"})
    summary = json.loads((tmp_path / "activations" / "summary.json").read_text())
    assert figures.top_trial_curves(summary, "B") is None  # no history anywhere: no picture
    for row, history in zip(summary["trials"], ([0.8, 0.91], [0.85, 0.9], None, None)):
        if history:
            row["history"] = history
    (tmp_path / "activations" / "summary.json").write_text(json.dumps(summary))
    drawn = []
    real_plot = __import__("matplotlib.axes", fromlist=["Axes"]).Axes.plot

    def recording_plot(self, x, y, **kwargs):
        drawn.append((list(x), list(y), kwargs.get("label")))
        return real_plot(self, x, y, **kwargs)

    import matplotlib.axes

    matplotlib.axes.Axes.plot = recording_plot
    try:
        png = figures.top_trial_curves(summary, "B", top=5)
    finally:
        matplotlib.axes.Axes.plot = real_plot
    assert _png_size(png)[0] > 400
    # The two trials with a history, best first; the one without (and the failed one) are not drawn.
    assert [(x, y) for x, y, _ in drawn] == [([1, 2], [0.8, 0.91]), ([1, 2], [0.85, 0.9])]
    assert drawn[0][2].endswith("(91.00%) — best")
    (section,) = sweep_sections({"activations": uri})
    assert "sweep_activations_curves.png" in section.figures


def test_trials_of_one_epoch_get_no_learning_curves_and_the_section_says_why(tmp_path):
    """One point per trial is no curve: the smoke profile's sweep trials drew a column of dots on an axis
    zoomed to their spread. No picture, and the section says why there is none."""
    import json

    from components.report import figures
    from components.report.document import sweep_sections

    trials = [(("selu", "relu", "relu", "relu"), 0.77), (("elu", "elu", "elu", "elu"), 0.76)]
    uri = _write_summary(tmp_path, "activations", trials, {**START, "optimizer": "Nadam"}, history=[0.77])
    summary = json.loads((tmp_path / "activations" / "summary.json").read_text())
    assert figures.top_trial_curves(summary, "B") is None
    (section,) = sweep_sections({"activations": uri})
    assert "sweep_activations_curves.png" not in section.figures
    assert section.intro.endswith("Each trial trained 1 epoch: no learning curves to draw.")


def test_parallel_coordinates_draw_one_line_per_trial_with_the_best_on_top(tmp_path):
    """Issue #16: the parallel-coordinates view of Katib's UI: an axis per parameter and one for the objective."""
    import json

    import matplotlib.axes

    from components.report import figures

    trials = [(("selu", "relu", "relu", "relu"), 0.91), (("elu", "elu", "elu", "elu"), 0.89),
              (("relu", "selu", "elu", "relu"), 0.90), (("elu", "relu", "relu", "relu"), None)]
    _write_summary(tmp_path, "activations", trials, {**START, "optimizer": "Nadam"})
    summary = json.loads((tmp_path / "activations" / "summary.json").read_text())
    drawn = []
    real_plot = matplotlib.axes.Axes.plot

    def recording_plot(self, x, y, **kwargs):
        drawn.append((list(x), list(y), kwargs.get("color")))
        return real_plot(self, x, y, **kwargs)

    matplotlib.axes.Axes.plot = recording_plot
    try:
        png = figures.parallel_coordinates(summary, "B")
    finally:
        matplotlib.axes.Axes.plot = real_plot
    assert _png_size(png)[0] > 400
    assert len(drawn) == 3  # the failed trial has no objective: no line
    assert all(x == [0, 1, 2, 3, 4] for x, _, _ in drawn)
    # Worst first, best last (on top, in red); each value at its place on its axis (elu 0, relu 0.5, selu 1),
    # the objective scaled from the worst (0) to the best (1).
    assert drawn[0][1] == [0.0, 0.0, 0.0, 0.0, 0.0]
    assert drawn[1][1] == [0.5, 1.0, 0.0, 0.5, 0.5]
    assert drawn[2][1] == [1.0, 0.5, 0.5, 0.5, 1.0] and drawn[2][2] == "tab:red"


def test_the_training_curves_mark_whole_epochs_only(tmp_path, monkeypatch):
    """The CNN's and the transfer runs' curves: five epochs read 1..5 on the axis, not 1.0, 1.5, ... 5.0."""
    import matplotlib.pyplot as plt

    from components.evaluate import plot_curves
    from components.transfer.curves import plot_transfer_curves

    drawn = []
    real_close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: (drawn.append(fig), real_close(fig)))
    history = {"accuracy": [0.70, 0.80, 0.84, 0.86, 0.87], "val_accuracy": [0.78, 0.79, 0.84, 0.85, 0.88],
               "loss": [0.8, 0.5, 0.45, 0.4, 0.35], "val_loss": [0.5, 0.6, 0.4, 0.4, 0.33]}
    plot_curves(history, tmp_path / "cnn.png")
    plot_transfer_curves({"frozen": {k: v[:3] for k, v in history.items()},
                          "fine_tune": {k: v[3:] for k, v in history.items()}}, tmp_path / "transfer.png")
    assert len(drawn) == 2 and (tmp_path / "cnn.png").exists() and (tmp_path / "transfer.png").exists()
    for figure in drawn:
        for axes in figure.axes:
            low, high = axes.get_xlim()
            ticks = [t for t in axes.get_xticks() if low <= t <= high]
            assert ticks and all(float(t).is_integer() for t in ticks), ticks
