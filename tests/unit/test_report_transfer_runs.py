"""The report's transfer runs arrive as a list (the pipeline's loop, collected) and are shown by base."""

from __future__ import annotations

import json

import pytest

from components.report.transfer_section import transfer_runs


def _run(tmp_path, name: str, base: str) -> str:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps({"base": base}))
    return str(folder)


def test_runs_in_any_order_come_back_by_base_in_the_bases_order(tmp_path):
    inception = _run(tmp_path, "iteration-1", "inception_v3")
    mobilenet = _run(tmp_path, "iteration-0", "mobilenet_v2")
    other = _run(tmp_path, "iteration-2", "a_base_not_defined_here")
    assert transfer_runs([other, inception, mobilenet]) == {
        "mobilenet_v2": mobilenet, "inception_v3": inception, "a_base_not_defined_here": other}


def test_two_runs_of_one_base_are_refused(tmp_path):
    first, second = _run(tmp_path, "a", "inception_v3"), _run(tmp_path, "b", "inception_v3")
    with pytest.raises(ValueError, match="two transfer runs of inception_v3"):
        transfer_runs([first, second])
