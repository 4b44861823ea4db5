"""Item 2: ``mixed_bfloat16`` against fp32 on the same data and seed: the speed-up, and the test-accuracy
change with the standard error of the paired difference."""

from __future__ import annotations

import base64
from pathlib import Path

from bench import stats
from bench.items.common import Context, as_number, as_percent, new_result


def item_bf16(ctx: Context) -> dict:
    r = new_result(2, "bf16", "bf16 (mixed_bfloat16) vs fp32: speed and accuracy")
    s = ctx.sizes
    data = ctx.dataset(s["acc_train_size"], s["acc_test_size"])
    from bench.machine import cpu_info

    flags = cpu_info()["flags"]
    r["settings"] = {"backend": ctx.backend, "data": Path(data).name, "epochs": s["acc_epochs"],
                     "batch_size": s["batch_size"], "seed": 1, "cpu_bf16_flags": [f for f in flags if "bf16" in f]}
    runs = {}
    for policy in ("float32", "mixed_bfloat16"):
        runs[policy] = ctx.probe({"kind": "train", "data": data, "epochs": s["acc_epochs"],
                                  "batch_size": s["batch_size"], "dtype_policy": policy, "evaluate": True, "seed": 1})
    g32, g16 = ctx.gemm(ctx.backend, "float32"), ctx.gemm(ctx.backend, "bfloat16")
    fp, bf = runs["float32"], runs["mixed_bfloat16"]
    speedup = bf["images_per_second"] / fp["images_per_second"]
    gemm_ratio = g16["flops_per_second"] / g32["flops_per_second"]
    diff = stats.paired_accuracy_difference(_bits(fp), _bits(bf))
    r["results"] = {
        "runs": {k: {kk: vv for kk, vv in v.items() if kk != "test_correct_bits"} for k, v in runs.items()},
        "gemm": {"float32": g32, "bfloat16": g16}, "gemm_ratio": gemm_ratio,
        "speedup": speedup, "accuracy_change": diff,
    }
    r["table"] = {"columns": ["policy", "images/s", "test accuracy", "GEMM GFLOP/s", "peak memory"],
                  "rows": [[p, as_number(runs[p]["images_per_second"]), as_percent(runs[p]["test_accuracy"], 2),
                            as_number(g["flops_per_second"] / 1e9), f"{runs[p]['peak_rss_mb']:,.0f} MB"]
                           for p, g in (("float32", g32), ("mixed_bfloat16", g16))]}
    loss_ok = diff["difference_pp"] >= -0.3
    met = speedup >= 1.5 and loss_ok
    r["headline"] = (f"{speedup:.2f}× images/s, test accuracy {diff['difference_pp']:+.2f} pp "
                     f"(± {diff['standard_error_pp']:.2f} pp)")
    r["target"] = {"text": "≥ 1.5× images/s at ≤ 0.3 pp accuracy loss", "met": met}
    if not met:
        reasons = []
        if speedup < 1.5:
            if gemm_ratio < 1.5:
                reasons.append(f"the backend's bf16 GEMM itself runs only {gemm_ratio:.2f}× the fp32 rate here, "
                               "so no model can gain 1.5× from it")
            else:
                reasons.append(f"bf16 GEMM is {gemm_ratio:.2f}× fp32, but training gains only {speedup:.2f}×: "
                               "mixed precision keeps variables, batch norm statistics, the softmax's loss and the "
                               "optimizer in fp32 and adds casts, so the non-GEMM share grows")
        if not loss_ok:
            reasons.append(f"accuracy fell by {-diff['difference_pp']:.2f} pp (more than 0.3)")
        r["results"]["why_not"] = "; ".join(reasons)
        r["notes"].append("Not reached: " + r["results"]["why_not"] + ".")
    if abs(diff["difference_pp"]) < 2 * diff["standard_error_pp"]:
        r["notes"].append("The accuracy change is within 2 standard errors of zero: at this size it cannot be told "
                          "from noise (more test images or epochs narrow it).")
    r["notes"].append(f"Accuracy after {s['acc_epochs']} epochs, same seed and data; the ± is the standard error of "
                      f"the paired difference on {diff['n']:,} test images ({diff['only_a']} right only in fp32, "
                      f"{diff['only_b']} only in bf16).")
    return r


def _bits(run: dict) -> list[bool]:
    import numpy as np

    packed = np.frombuffer(base64.b64decode(run["test_correct_bits"]), dtype=np.uint8)
    return [bool(b) for b in np.unpackbits(packed)[: run["test_images"]]]

