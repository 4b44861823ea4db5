"""Item 4: the share of the training step not spent computing (an upper bound on waiting for data)."""

from __future__ import annotations

from bench.items.common import Context, as_percent, new_result


def item_pipeline(ctx: Context) -> dict:
    r = new_result(4, "input_pipeline", "Input pipeline: share of step time spent waiting for data")
    s = ctx.sizes
    data = ctx.dataset(s["data_train_size"], s["data_test_size"])
    r["settings"] = {"backend": ctx.backend, "train_images": s["train_images"], "epochs": s["epochs"],
                     "batch_size": s["batch_size"], "input": "model.fit on the float32 arrays from the .npy "
                     "artifact, shuffled (as components.cnn.train)", "compute_repeats": s["pipeline_repeats"]}
    res = ctx.probe({"kind": "train", "data": data, "train_images": s["train_images"], "epochs": s["epochs"],
                     "batch_size": s["batch_size"], "pipeline": True, "pipeline_repeats": s["pipeline_repeats"]})
    p = res["pipeline"]
    r["results"] = {"probe": res, **p}
    r["table"] = {"columns": ["per step", "seconds", "share of fit's step"],
                  "rows": [["fit (real data, shuffled)", f"{p['fit_step_s']:.4f}", "100%"],
                           ["same step on a batch already in memory", f"{p['compute_step_s']:.4f}",
                            as_percent(p["compute_step_s"] / p["fit_step_s"])],
                           ["data path alone (backend's fit iterator, no training)",
                            "–" if p["data_step_s"] is None else f"{p['data_step_s']:.4f}",
                            as_percent(p["data_share"])]]}
    r["headline"] = (f"{as_percent(p['wait_share'])} of the step not spent computing "
                     f"(data path alone: {as_percent(p['data_share'])})")
    r["target"] = {"text": "≤ 5% waiting for data", "met": p["wait_share"] <= 0.05}
    r["notes"].append("Waiting share = (fit's step − the same step on a resident batch) / fit's step: everything fit "
                      "does besides computing, so an upper bound on waiting for data. The data path alone is what "
                      "the input would cost if nothing overlapped it (TensorFlow prefetches; JAX/PyTorch iterate "
                      "the numpy arrays in the training loop).")
    if p["wait_share_raw"] < 0:
        r["notes"].append(f"The raw difference was negative ({p['wait_share_raw']:.1%}): within timing noise, "
                          "shown as 0.")
    return r

