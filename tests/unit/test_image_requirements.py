"""What each trainer image variant installs from requirements.lock (images/requirements_for.py).

The GPU variant sits on a base image with CUDA TensorFlow; a TensorFlow distribution from the
lock would install a CPU build over it, so none may be in its list, however the lock spells the
name (PEP 503: names compare lowercased, with runs of '-', '_' and '.' as one '-').
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "images" / "requirements_for.py"


def requirements_for(variant: str, text: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), variant], input=text, capture_output=True, text=True)


def names(text: str) -> set[str]:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from requirements_for import requirement_name
    finally:
        sys.path.pop(0)
    return {n for n in map(requirement_name, text.splitlines()) if n}


def test_the_gpu_variant_of_the_lock_holds_no_tensorflow_distribution():
    lock = (REPO / "requirements.lock").read_text()
    gpu = requirements_for("gpu", lock)
    assert gpu.returncode == 0, gpu.stderr
    assert not {n for n in names(gpu.stdout) if n.startswith(("tensorflow", "tf-"))} - {"tensorboard"}
    assert {"tensorflow-cpu", "tensorflow"} <= names(lock)  # the lock has both, for its platforms
    assert names(gpu.stdout) == names(lock) - {"tensorflow-cpu", "tensorflow"}


@pytest.mark.parametrize("spelling", ["tensorflow_cpu", "tensorflow-cpu", "TensorFlow.CPU", "tensorflow__cpu",
                                      "tensorflow", "Tensorflow-GPU", "tf_nightly"])
def test_every_spelling_of_a_tensorflow_name_is_left_out_of_the_gpu_variant(spelling):
    text = f"keras==3.12.4\n{spelling}==2.21.0 ; sys_platform == 'linux'\nnumpy==2.4.6\n"
    assert requirements_for("gpu", text).stdout == "keras==3.12.4\nnumpy==2.4.6\n"
    assert requirements_for("cpu", text).stdout == text


def test_an_unknown_variant_gets_one_line_and_exit_2():
    result = requirements_for("tpu", "keras==3.12.4\n")
    assert result.returncode == 2
    assert result.stderr == "error: expected one variant argument, one of cpu, gpu\n"
    assert result.stdout == ""
