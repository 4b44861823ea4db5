"""A third transfer base, added by its definition alone (a fixture registers it): the profile check,
the CLI, the compiled pipeline's transfer loop and the report take it up, and the pipeline's own step
trains it on a few images."""

import argparse
import json
from pathlib import Path

import pytest
import yaml

from components.transfer.bases import BASES, BaseSpec

pytestmark = pytest.mark.slow

# Any small keras.applications model: MobileNetV3Small rescales its input itself, 157 layers without the top.
NEW_BASE = BaseSpec("mobilenet_v3_small", "MobileNetV3Small", min_size=32, preprocessing="none", fine_tune_from=120,
                    input_size=32)


def step_outputs(folder: Path) -> dict:
    """The transfer step's output artifacts, in a new folder."""
    from kfp import dsl

    folder.mkdir()
    return {name: kind(uri=str(folder / name)) for name, kind in (
        ("run", dsl.Model), ("metrics", dsl.Metrics), ("curves", dsl.Artifact), ("view", dsl.HTML))}


@pytest.fixture
def new_base(monkeypatch) -> BaseSpec:
    monkeypatch.setitem(BASES, NEW_BASE.name, NEW_BASE)
    return NEW_BASE


def test_the_definition_alone_adds_a_pipeline_step_a_cli_choice_and_profile_checks(new_base, tmp_path):
    from components.profile_check import load_profile, profile_problems
    from components.transfer.cli import add_arguments
    from pipelines.compile import compile_pipeline

    path = tmp_path / "pipeline.yaml"
    compile_pipeline(str(path))
    spec = yaml.safe_load_all(path.read_text()).__next__()
    (loop,) = [task for task in spec["root"]["dag"]["tasks"].values() if "parameterIterator" in task]
    # The transfer loop runs one iteration per base: the study's two first, then the new one.
    assert yaml.safe_load(loop["parameterIterator"]["items"]["raw"]) == [
        "mobilenet_v2", "inception_v3", "mobilenet_v3_small"]

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    run_help = parser._subparsers._group_actions[0].choices["run"].format_help()
    assert "mobilenet_v3_small" in run_help and "32 for MobileNetV3Small" in run_help

    profile = load_profile("smoke")  # the profile check builds the new base's settings too
    profile["transfer"]["bases"]["mobilenet_v3_small"] = {"input_size": 31}  # what its profile entry may say
    assert profile_problems(profile) == [
        "transfer: input_size=31: MobileNetV3Small needs images of at least 32x32 pixels"]


def test_the_pipelines_step_trains_the_new_base_and_the_report_shows_it(new_base, tiny_data, tmp_path):
    from kfp import dsl

    from components.report.transfer_section import transfer_section
    from components.transfer.data import write_image_folder
    from pipelines.steps.transfer import transfer_learning

    images = tmp_path / "images"
    write_image_folder(tiny_data, str(images), classes=(5, 7, 9), images_per_class=10, seed=1)
    settings = {"weights": "none", "frozen_epochs": 1, "fine_tune_epochs": 1, "batch_size": 8,
                "bases": {"mobilenet_v3_small": {"frozen_learning_rate": 0.01}}}
    outputs = step_outputs(tmp_path / "out")
    # The KFP component's own body, in this process (where the fixture registered the base).
    transfer_learning.python_func(base=new_base.name, images=dsl.Dataset(uri=str(images)),
                                  source=dsl.Dataset(uri=tiny_data), transfer_settings=settings, **outputs)

    run = Path(outputs["run"].path)
    metrics = json.loads((run / "metrics.json").read_text())
    assert (metrics["base"], metrics["constructor"], metrics["input_shape"]) == (
        "mobilenet_v3_small", "MobileNetV3Small", [32, 32, 3])
    assert {k: len(v["loss"]) for k, v in metrics["history"].items()} == {"frozen": 1, "fine_tune": 1}
    assert metrics["data"]["counts"] == {"train": 18, "val": 6, "test": 6}
    assert metrics["fine_tune_from"]["index"] == 120
    assert metrics["params"]["trainable_frozen"] == 576 * 3 + 3
    assert {"model.keras", "frozen.keras", "curves.png", "history.json"} <= {p.name for p in run.iterdir()}
    assert outputs["metrics"].metadata["trainable_params_frozen"] == 576 * 3 + 3
    assert "MobileNetV3Small" in Path(outputs["view"].path).read_text()

    # The report collects the loop's runs in any order and shows them in the bases' order.
    from components.report.transfer_section import transfer_runs

    assert list(transfer_runs([str(run)])) == [new_base.name]
    section = transfer_section({new_base.name: str(run)})
    assert section.table[1][:3] == ["MobileNetV3Small", "32×32", "none"]
    assert section.table[1][6:] == ["—", "—"]  # no published figures for a base the study did not run
    assert list(section.figures) == ["transfer_mobilenet_v3_small_curves.png"]


def test_two_iterations_of_the_transfer_loop_keep_their_own_work_folders(new_base, tiny_data, tmp_path):
    """On the cluster KFP's driver gives every iteration of a loop the same task name (the task's
    name in the loop's DAG: backend/src/v2/cmd/driver/main.go's task_name flag, which
    backend/src/v2/driver/resolve.go puts in for {{$.pipeline_task_name}}). Two bases of one run,
    under one work root, must still train in their own folders, not resume each other's."""
    from kfp import dsl

    from components.transfer.data import write_image_folder
    from pipelines.steps.transfer import transfer_learning

    images = tmp_path / "images"
    write_image_folder(tiny_data, str(images), classes=(5, 7, 9), images_per_class=10, seed=1)
    settings = {"weights": "none", "frozen_epochs": 1, "fine_tune_epochs": 0, "batch_size": 8,
                "bases": {"mobilenet_v2": {"input_size": 32, "alpha": 0.35}}}
    work = tmp_path / "work"
    runs = {}
    for base in ("mobilenet_v2", new_base.name):
        outputs = step_outputs(tmp_path / base)
        transfer_learning.python_func(base=base, images=dsl.Dataset(uri=str(images)),
                                      source=dsl.Dataset(uri=tiny_data), transfer_settings=settings,
                                      work_root=str(work), run_id="run-1", task_name="transfer-learning", **outputs)
        runs[base] = json.loads((Path(outputs["run"].path) / "metrics.json").read_text())
    assert {base: m["base"] for base, m in runs.items()} == {"mobilenet_v2": "mobilenet_v2",
                                                              new_base.name: new_base.name}
    assert runs[new_base.name]["constructor"] == "MobileNetV3Small"
    assert sorted(p.name for p in (work / "run-1" / "transfer-learning").iterdir()) == sorted(runs)
