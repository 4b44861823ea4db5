"""katib.validate.load: one Experiment from a YAML file, or one line saying why not."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.core.errors import UserError
from katib.validate import load_experiment
from tests.fixtures.katib_validate import VALID_DIR


def _load_error(tmp_path: Path, text: str | None, name: str = "experiment.yaml") -> str:
    path = tmp_path / name
    if text is not None:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as raised:
        load_experiment(str(path))
    message = str(raised.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_load_missing_file(tmp_path: Path) -> None:
    assert "no such file" in _load_error(tmp_path, None)


def test_load_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.yaml").mkdir()
    assert "directory" in _load_error(tmp_path, None, name="dir.yaml")


def test_load_yaml_syntax_error(tmp_path: Path) -> None:
    message = _load_error(tmp_path, "apiVersion: kubeflow.org/v1beta1\nkind: [Experiment\n")
    assert "not valid YAML" in message and "line" in message


def test_load_not_a_mapping(tmp_path: Path) -> None:
    assert "expected a mapping" in _load_error(tmp_path, "- apiVersion: kubeflow.org/v1beta1\n")


def test_load_empty_file(tmp_path: Path) -> None:
    assert "0 YAML documents" in _load_error(tmp_path, "# nothing here\n")


def test_load_several_documents(tmp_path: Path) -> None:
    one = "apiVersion: kubeflow.org/v1beta1\nkind: Experiment\n"
    assert "2 YAML documents" in _load_error(tmp_path, one + "---\n" + one)


def test_load_wrong_kind(tmp_path: Path) -> None:
    message = _load_error(tmp_path, "apiVersion: kubeflow.org/v1beta1\nkind: Trial\n")
    assert "'Trial'" in message and "expected Experiment" in message


def test_load_wrong_api_version(tmp_path: Path) -> None:
    message = _load_error(tmp_path, "apiVersion: kubeflow.org/v1alpha3\nkind: Experiment\n")
    assert "'kubeflow.org/v1alpha3'" in message and "expected kubeflow.org/v1beta1" in message


def test_load_returns_the_mapping() -> None:
    experiment = load_experiment(str(VALID_DIR / "random.yaml"))
    assert experiment["metadata"]["name"] == "seed-cnn-random"
