"""Item 1 (bench/items/throughput.py), run end to end on tiny sizes through ``python -m bench.run``."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO
from tests.unit.test_bench import SEED_FORWARD_FLOPS


def test_quick_run_of_the_throughput_item(tmp_path, fmnist_dir):
    sets = ["gemm_n=128", "gemm_repeats=2", "train_images=128", "epochs=2", "variants=baseline",
            "data_train_size=300", "data_test_size=100"]
    cmd = [sys.executable, "-m", "bench.run", "--quick", "--only", "1", "--out", str(tmp_path / "out"),
           "--work", str(tmp_path / "work"), "--backend", "tensorflow"]
    for s in sets:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    [json_file] = (tmp_path / "out").glob("*.json")
    results = json.loads(json_file.read_text())
    [item] = results["items"]
    assert item["status"] == "ok" and item["id"] == 1
    res = item["results"]
    assert res["forward_flops_per_image"] == SEED_FORWARD_FLOPS
    assert res["gemm"]["flops_per_second"] > 0 and res["ceiling_images_per_second"] > 0
    baseline = res["variants"]["baseline"]
    assert baseline["images_per_second"] > 0 and baseline["train_images"] == 128
    assert baseline["forward_flops_per_image"] == SEED_FORWARD_FLOPS
    assert item["target"]["met"] in (True, False)
    assert json_file.with_suffix(".md").exists()
