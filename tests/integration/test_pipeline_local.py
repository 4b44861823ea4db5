"""The whole pipeline through kfp.local on a tiny subset."""

import json
from pathlib import Path

import pytest

from tests.conftest import TINY_TRANSFER, run_cli

pytestmark = pytest.mark.slow



def _executor_output(root: Path, task: str) -> dict:
    (path,) = root.glob(f"*/{task}/executor_output.json")
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, fmnist_dir):
    """The whole pipeline once on a tiny subset: (the run folder, the CLI's result)."""
    runs = tmp_path_factory.mktemp("runs")
    result = run_cli("run", "--runs-dir", runs, "--run-id", "tiny",
                     "--set", "data.train_size=1000", "--set", "data.test_size=300",
                     "--set", "train.epochs=1", "--set", "train.batch_size=64",
                     "--set", "sweeps.max_trials.optimizer=2", "--set", "sweeps.max_trials.activations=2",
                     "--set", "sweeps.max_trials.filters=2",
                     # Two epochs per trial: a trial of one epoch has no learning curve to draw.
                     "--set", "sweeps.epochs=2",
                     *TINY_TRANSFER)
    assert result.returncode == 0, result.stderr[-3000:]
    return runs / "tiny", result


def test_local_pipeline_produces_report_and_metrics_artifacts(tiny_run):
    root, result = tiny_run
    report = root / "report" / "report.md"
    assert f"report: {report}" in result.stdout
    text = report.read_text()
    assert "| hand-written CNN | 3,831,018 |" in text and "92.43%" in text
    assert "900 training, 100 validation and 300 test images" in text
    # The first lines say what each part trained on, from what the trials themselves recorded.
    assert ("The hand-written CNN trained on 900 images for 1 epoch; each sweep trial on 900 images for 2 epochs; "
            "the study trained on 54,000 images for 10 epochs.") in text
    html = (root / "report" / "report.html").read_text()

    train = _executor_output(root, "train-cnn")["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert {"accuracy", "loss", "val_accuracy", "val_loss", "train_images_per_second"} <= set(train)
    evaluate = _executor_output(root, "evaluate-model")["artifacts"]
    assert 0.0 <= evaluate["metrics"]["artifacts"][0]["metadata"]["test_accuracy"] <= 1.0
    confusion = evaluate["confusion"]["artifacts"][0]["metadata"]["confusionMatrix"]
    assert len(confusion["annotationSpecs"]) == 10
    assert sum(sum(row["row"]) for row in confusion["rows"]) == 300

    # Question 2: three chained sweeps, each fixing what the one before found.
    summaries = {stage: json.loads(next(root.glob(f"*/{task}/sweep/summary.json")).read_text())
                 for stage, task in (("optimizer", "run-sweep"), ("activations", "run-sweep-2"),
                                     ("filters", "run-sweep-3"))}
    assert [len(s["trials"]) for s in summaries.values()] == [2, 2, 2]
    assert summaries["activations"]["fixed"]["optimizer"] == summaries["optimizer"]["best"]["optimizer"]
    assert summaries["filters"]["fixed"]["optimizer"] == summaries["optimizer"]["best"]["optimizer"]
    assert summaries["filters"]["fixed"]["activations"] == summaries["activations"]["best"]["activations"]
    for stage, summary in summaries.items():
        best = summary["best_combination"]
        assert summary["best_index"] == next(t["index"] for t in summary["trials"] if t["combination"] == best)
        # every trial was the real trial runner, writing its own output folder
        outputs = next(root.glob(f"*/{'run-sweep' + {'optimizer': '', 'activations': '-2', 'filters': '-3'}[stage]}"
                                 "/sweep/outputs"))
        assert len([p for p in outputs.iterdir() if (p / "metrics.json").exists()]) == 2
    assert "## Question 2A: optimizers" in text and "Nadam at 93.05%" in text
    assert "| study | selu, relu, relu, relu | 67 (combination 68) | 93.37% |" in text
    assert "| study | 32, 64, 64, 64 | 53 (combination 54) | 93.38% |" in text
    # curves, confusion, 3 sweeps' bars, the 2 grid sweeps' heatmaps, 2 transfer curves, and for each of the
    # 3 sweeps its best trials' learning curves and its parallel coordinates
    assert html.count("data:image/png;base64,") == 15

    # Question 1B: the AutoKeras search beside the hand-written CNN, with the study's figures.
    assert "| AutoKeras search (vanilla block) |" in text and "23,608,205" in text and "92.10%" in text
    nas = _executor_output(root, "nas")["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert {"test_accuracy", "params", "trials"} <= set(nas)

    # Question 3: both bases through both phases, beside the study's figures.
    assert "Question 3" in text and "MobileNetV2" in text and "InceptionV3" in text
    assert "92.23%" in text and "98.06%" in text


def test_an_existing_run_folder_is_refused(tmp_path):
    (tmp_path / "taken").mkdir()
    result = run_cli("run", "--runs-dir", tmp_path, "--run-id", "taken")
    assert result.returncode == 2
    assert "exists already" in result.stderr.strip().splitlines()[-1]


PAGE_CHECK = """(() => {
  const images = [...document.images].map(i => ({alt: i.alt, loaded: i.complete && i.naturalWidth > 0}));
  const text = document.body.innerText;
  return {images, tables: document.querySelectorAll('table').length,
          cells: document.querySelectorAll('td').length,
          toc: [...document.querySelectorAll('nav a')].map(a => a.getAttribute('href')),
          sections: [...document.querySelectorAll('section[id]')].map(s => '#' + s.id),
          markers: ['**', '![', '|---', '| ---', '](', '`'].filter(m => text.includes(m))};
})()"""


def test_the_report_reads_well_in_a_real_browser(tiny_run):
    from tests.fixtures.browser import load_page

    root, _ = tiny_run
    report_dir = root / "report"
    page = load_page(report_dir / "report.html", PAGE_CHECK, screenshot=report_dir / "screenshot.png")
    checked = page.result
    assert page.console_errors == []
    assert len(checked["images"]) == 15 and all(i["loaded"] for i in checked["images"]), checked["images"]
    assert checked["markers"] == [], "literal Markdown in the rendered page"
    assert checked["tables"] >= 6 and checked["cells"] > 40
    assert checked["toc"] == checked["sections"] and len(checked["toc"]) >= 6
    assert page.screenshot.read_bytes().startswith(b"\x89PNG") and page.screenshot.stat().st_size > 50_000


def test_a_fourth_sweep_added_by_its_definition_runs_locally_into_a_report_section(tmp_path, tiny_data):
    """The test-only fourth sweep (tests/fixtures/trials/fourth_sweep.py) through the pipeline's sweep step and
    the local Katib backend: two real trials of one epoch on the tiny data, fed the third sweep's winner."""
    from kfp import dsl

    from components.profile_check import load_profile
    from components.report.document import sweep_sections
    from components.report.render import write_report
    from pipelines.steps.sweep import run_sweep
    from pipelines.study_pipeline import without_none
    from tests.fixtures.trials.fourth_sweep import fourth_sweep

    third_winner = {"optimizer": "Nadam", "activations": "selu,relu,relu,relu", "filters": "32,64,64,64"}
    settings = without_none(load_profile("smoke", ["sweeps.epochs=1"])["sweeps"])
    out = tmp_path / "sweep"
    with fourth_sweep():
        outputs = run_sweep.python_func(stage="batch_size", dataset=dsl.Dataset(uri=tiny_data),
                                        sweep=dsl.Artifact(uri=str(out)), metrics=dsl.Metrics(uri=str(tmp_path / "m")),
                                        sweep_settings=settings, fixed=third_winner)
        sections = sweep_sections({"batch_size": str(out)})
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stage"] == "batch_size" and summary["fixed"] == third_winner
    assert outputs.winner == summary["best"] == {**third_winner, "batch_size": summary["best_combination"][0]}
    assert sorted(t["combination"][0] for t in summary["trials"]) == ["32", "64"]
    assert all(t["state"] == "Succeeded" for t in summary["trials"])
    for trial in summary["trials"]:  # each trial trained with its own batch size and the third's winner
        config = json.loads((out / "outputs" / trial["name"] / "metrics.json").read_text())["config"]
        assert config["batch_size"] == int(trial["combination"][0]) and config["optimizer"] == "Nadam"
        assert config["filters"] == [32, 64, 64, 64] and config["epochs"] == 1
    (section,) = sections
    report = Path(write_report(sections, str(tmp_path / "report"))["markdown"]).read_text()
    assert "## Question 2D: batch size" in report and "2 of 2 grid points ran" in section.intro
    assert "![sweep_batch_size_objective.png](sweep_batch_size_objective.png)" in report
