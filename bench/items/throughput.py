"""Item 1: training images/s of the hand-written CNN against this machine's ceiling (the fp32 GEMM rate
over the model's training FLOPs), for several thread / XLA / steps-per-execution / batch variants."""

from __future__ import annotations

from bench import flops
from bench.items.common import Context, as_number, as_percent, new_result, size_list


def _variant_settings(name: str, cores: int) -> tuple[dict, dict]:
    """A training variant (``a+b`` combines) as probe spec overrides and environment."""
    spec, env = {}, {}
    for part in name.split("+"):
        if part == "baseline":
            pass  # as components.cnn.train runs a trial: jit "auto", 1 step per execution, default threads
        elif part == "xla":
            spec["jit_compile"] = True
        elif part == "nojit":
            spec["jit_compile"] = False
        elif part == "noonednn":  # TensorFlow's own (Eigen) kernels instead of oneDNN's
            env["TF_ENABLE_ONEDNN_OPTS"] = "0"
        elif part == "threads":  # one op at a time, each using every core
            env.update(TF_NUM_INTRAOP_THREADS=str(cores), TF_NUM_INTEROP_THREADS="1", OMP_NUM_THREADS=str(cores))
            spec["torch_threads"] = cores
        elif part.startswith("spe"):
            spec["steps_per_execution"] = int(part[3:])
        elif part.startswith("batch"):
            spec["batch_size"] = int(part[5:])
        else:
            raise ValueError(f"variant part {part!r}: expected baseline, xla, nojit, noonednn, threads, speN "
                             "or batchN")
    return spec, env


def item_throughput(ctx: Context) -> dict:
    r = new_result(1, "throughput", "Trial throughput vs the machine's ceiling")
    s = ctx.sizes
    data = ctx.dataset(s["data_train_size"], s["data_test_size"])
    forward = flops.study_cnn_forward_flops()
    gemm = ctx.gemm(ctx.backend)
    ceiling = flops.ceiling_images_per_second(gemm["flops_per_second"], forward)
    r["settings"] = {"backend": ctx.backend, "train_images": s["train_images"], "epochs": s["epochs"],
                     "measured_epochs": s["epochs"] - 1, "batch_size": s["batch_size"], "gemm_n": s["gemm_n"]}
    rows, variants = [], {}
    for name in size_list(s["variants"]):
        spec_extra, env = _variant_settings(name, ctx.cores)
        spec = {"kind": "train", "data": data, "train_images": s["train_images"], "epochs": s["epochs"],
                "batch_size": s["batch_size"], **spec_extra}
        try:
            res = ctx.probe(spec, env)
        except Exception as err:  # noqa: BLE001 - one variant failing is a row, not the end
            variants[name] = {"error": str(err)}
            rows.append([name, "failed", "–", "–", "–", str(err)[:80]])
            continue
        share = res["images_per_second"] / ceiling
        variants[name] = {**res, "share_of_ceiling": share, "env": env}
        rows.append([name, as_number(res["images_per_second"]), as_percent(share),
                     f"{res['warmup_epoch_seconds']:.1f} s",
                     f"jit={res['jit_compile']} spe={res['steps_per_execution']} batch={res['batch_size']}",
                     ", ".join(f"{k}={v}" for k, v in env.items()) or "defaults"])
        if res["forward_flops_per_image"] != forward:
            r["notes"].append(f"FLOPs read from the built model ({res['forward_flops_per_image']:,}) differ from "
                              f"the analytic count ({forward:,})")
    ok = {k: v for k, v in variants.items() if "error" not in v}
    r["results"] = {
        "forward_flops_per_image": forward,
        "training_flops_per_image": flops.training_flops(forward),
        "gemm": gemm,
        "ceiling_images_per_second": ceiling,
        "variants": variants,
    }
    r["table"] = {"columns": ["variant", "images/s", "of ceiling", "warm-up epoch", "compile settings", "threads"],
                  "rows": rows}
    r["notes"].insert(0, f"Ceiling: {gemm['flops_per_second'] / 1e9:.0f} GFLOP/s fp32 GEMM (n={gemm['n']}, "
                         f"{ctx.backend}) / {flops.training_flops(forward) / 1e6:.1f} MFLOP per training image "
                         f"(3 × {forward / 1e6:.2f}) = {ceiling:,.0f} images/s.")
    r["notes"].append("baseline = components.cnn.train's settings (jit_compile auto: off for TensorFlow on a CPU, on "
                      "for JAX; 1 step per execution; default threads). batchN changes a trial hyperparameter.")
    if ok:
        best_name = max(ok, key=lambda k: ok[k]["images_per_second"])
        best = ok[best_name]
        base = ok.get("baseline")
        r["results"]["best_variant"] = best_name
        r["headline"] = (f"{best['images_per_second']:,.0f} images/s = {as_percent(best['share_of_ceiling'])} of the "
                         f"ceiling ({best_name})" + (f"; baseline {as_percent(base['share_of_ceiling'])}" if base and
                                                     best_name != "baseline" else ""))
        r["target"] = {"text": "≥ 90% of the ceiling", "met": best["share_of_ceiling"] >= 0.9}
    else:
        r["status"] = "failed"
    return r


