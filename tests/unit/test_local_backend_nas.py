"""Neural architecture search (enas, darts) is refused in one line that says why.

Katib v0.19.0: examples/v1beta1/nas/enas-cpu.yaml and darts-cpu.yaml have spec.nasConfig and no
spec.parameters; their trials are built by pkg/suggestion/v1beta1/nas/{enas,darts}.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from components.core.errors import UserError
from tests.fixtures.trials.example_experiments import example_experiment, run


@pytest.mark.parametrize("algorithm", ["enas", "darts"])
def test_nas_algorithms_need_katibs_nas_services(tmp_path: Path, algorithm: str) -> None:
    experiment = example_experiment(algorithm=algorithm)
    del experiment["spec"]["parameters"]
    experiment["spec"]["nasConfig"] = {"graphConfig": {"numLayers": 8}, "operations": []}
    with pytest.raises(UserError) as raised:
        run(experiment, tmp_path)
    message = str(raised.value)
    assert "\n" not in message and raised.value.exit_code == 2
    assert f"algorithm {algorithm!r} is a neural architecture search" in message
    assert "Katib's NAS services" in message and "not run locally" in message
    assert "it is required" not in message  # not the bare "no spec.parameters" of before
