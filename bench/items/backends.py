"""Item 3: the same trial under Keras' TensorFlow, JAX and PyTorch backends: images/s, share of each
backend's own GEMM ceiling, and peak memory."""

from __future__ import annotations

from bench import flops
from bench.items.common import BACKEND_MODULES, Context, as_number, as_percent, backend_installed, new_result, size_list


def item_backends(ctx: Context) -> dict:
    r = new_result(3, "backends", "The same trial under Keras' TensorFlow, JAX and PyTorch backends")
    s = ctx.sizes
    data = ctx.dataset(s["data_train_size"], s["data_test_size"])
    forward = flops.study_cnn_forward_flops()
    r["settings"] = {"train_images": s["train_images"], "epochs": s["epochs"], "batch_size": s["batch_size"],
                     "settings": "components.cnn.train's (baseline)"}
    rows, per = [], {}
    for backend in size_list(s["backends"]):
        if not backend_installed(backend):
            reason = f"{BACKEND_MODULES.get(backend, backend)} is not installed"
            if backend == "torch":
                reason += " (PyTorch is not part of the default install: `uv pip install -e '.[gp]'` adds it)"
            per[backend] = {"skipped": reason}
            rows.append([backend, "not installed", "–", "–", "–", "–"])
            continue
        try:
            gemm = ctx.gemm(backend)
            res = ctx.probe({"kind": "train", "data": data, "train_images": s["train_images"], "epochs": s["epochs"],
                             "batch_size": s["batch_size"]}, backend=backend)
        except Exception as err:  # noqa: BLE001
            per[backend] = {"error": str(err)}
            rows.append([backend, "failed", "–", "–", "–", str(err)[:80]])
            continue
        ceiling = flops.ceiling_images_per_second(gemm["flops_per_second"], forward)
        per[backend] = {**res, "gemm": gemm, "ceiling_images_per_second": ceiling,
                        "share_of_ceiling": res["images_per_second"] / ceiling}
        rows.append([backend, as_number(res["images_per_second"]), as_percent(res["images_per_second"] / ceiling),
                     f"{res['peak_rss_mb']:,.0f} MB", f"{res['warmup_epoch_seconds']:.1f} s",
                     f"jit={res['jit_compile']}; GEMM {gemm['flops_per_second'] / 1e9:,.0f} GFLOP/s"])
    r["results"] = {"backends": per}
    r["table"] = {"columns": ["backend", "images/s", "of its ceiling", "peak memory (RSS)", "warm-up epoch", "notes"],
                  "rows": rows}
    ok = {k: v for k, v in per.items() if "images_per_second" in v}
    if ok:
        best = max(ok, key=lambda k: ok[k]["images_per_second"])
        r["headline"] = ", ".join(f"{k} {v['images_per_second']:,.0f}" for k, v in ok.items()) + \
            f" images/s (fastest: {best})"
    r["target"] = {"text": "(no target: a comparison)", "met": None}
    r["notes"].append("Peak memory is the probe process's maximum resident set (ru_maxrss): the backend, the model, "
                      "the float32 training images and the input path together.")
    return r

