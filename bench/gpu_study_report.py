"""The GPU study's ``study.md``: settings, stages, accuracy against the study, projection, trials."""

from __future__ import annotations

import statistics

from bench.gpu_peaks import ceiling_rows, datasheet_peaks
from bench.gpu_study_helpers import ACCURACY_TOLERANCE_PP, STAGE_LABELS
from bench.report import md_table


def render_markdown(res: dict) -> str:
    from components.core.settings import STUDY_RESULTS
    from components.sweeps import SWEEPS

    s = res.get("settings", {})
    m = res.get("machine", {})
    sharing = {True: "through MPS", False: "by time slices (no MPS)"}.get(s.get("mps"), "(MPS not recorded)")
    out = ["# The study on one GPU", "",
           f"- mode: **{s.get('mode')}**, {s.get('parallel')} trials at once, {s.get('epochs')} epochs, backend "
           f"{s.get('backend')}, dtype policy {s.get('dtype_policy')}, "
           f"matmul precision {s.get('matmul_precision') or 'JAX default'}, "
           f"checkpoints {'on' if s.get('checkpoints') else 'off'}, "
           + ("B and C started from the study's winners (--chain study), " if s.get("chain") == "study" else "")
           + (f"GPU shared {sharing}" if m.get("gpus") or "gpus" not in m else "no GPU"),
           f"- machine: {', '.join(m.get('gpus') or []) or 'no GPU'}; CPU {m.get('cpu', {}).get('model')} × "
           f"{m.get('cores')}; Python {m.get('python')}; "
           + ", ".join(f"{k} {v}" for k, v in sorted((m.get("libraries") or {}).items()))
           + f"; commit {m.get('commit') or 'unknown'}",
           f"- data: {res.get('data_counts')} (prepared in {res.get('data_s', 0):.0f} s)"
           + _cache_note(s.get("compile_cache")),
           f"- **wall time: {res.get('wall_s', 0):,.0f} s** ({res.get('wall_s', 0) / 60:.1f} min)"
           + (f", from the data on; the checks before it (finite outputs, GEMM rates) took {res['checks_s']:,.0f} s"
              if res.get("checks_s") is not None else ""), ""]
    if s.get("packed"):
        out.insert(3, "- **packed trials** (`components.cnn.packed`): trials of one shape and optimizer trained in one "
                      "JAX program (vmap over members, an epoch per `lax.scan`), packs spread over the workers"
                      + _padding_note(s.get("pad_filters"), res.get("padding_waste")))
    out += throughput_lines(res.get("throughput"))
    out += ceiling_lines(res)
    out += ["## Stages", "", "A trial's first epoch also traces and compiles its program (a pack's: the whole "
            "pack's); the later epochs only train.", ""]
    rows = []
    for stage, st in res.get("stages", {}).items():
        walls = st["trial_walls"]
        first, later = epoch_split([r for r in res.get("trials", []) if r.get("stage") == stage])
        rows.append([STAGE_LABELS[stage], st["trials"], st["failed"], f"{st['wall_s']:,.0f}",
                     f"{statistics.mean(walls):,.1f}" if walls else "–", first, later,
                     (st.get("winner") or {}).get("name", "–")])
    out += [md_table(["stage", "trials", "failed", "wall s", "mean trial s", "mean first epoch s",
                      "mean later epoch s", "winner"], rows), ""]
    out += ["## Accuracy", ""]
    acc_rows = []
    q1a = res.get("q1a")
    if q1a:
        acc_rows.append(_test_accuracy_row("Q1A seed CNN (test accuracy)", "Adam, relu×4, 32,32,64,64", q1a,
                                           STUDY_RESULTS["study_cnn"]["test_accuracy"]))
    q1b = res.get("q1b")
    if q1b:
        version = next((v for k, v in (q1b.get("best_hyperparameters") or {}).items() if k.endswith("/version")), "")
        block = " ".join(p for p in ((q1b.get("config") or {}).get("block_type"), version) if p)
        trials = q1b.get("trials", 0)
        what = (f"{block}, {q1b.get('params', 0):,} params, {trials} trial{'' if trials == 1 else 's'}, "
                f"{q1b.get('wall_s', 0):,.0f} s")
        acc_rows.append(_test_accuracy_row("Q1B AutoKeras search (test accuracy)",
                                           what if q1b.get("test_accuracy") is not None else "–", q1b,
                                           STUDY_RESULTS["autokeras_resnet"]["test_accuracy"]))
    for stage, st in res.get("stages", {}).items():
        w = st.get("winner")
        study = SWEEPS[stage].study
        ev = res.get("evaluations", {}).get(stage, {})
        if not w:
            continue
        delta = 100 * (w["objective"] - study.accuracy)
        setting = {"optimizer": w["config"]["optimizer"], "activations": ",".join(w["config"]["activations"]),
                   "filters": ",".join(map(str, w["config"]["filters"]))}[stage]
        acc_rows.append([f"{STAGE_LABELS[stage]} (best val_accuracy)", f"{setting} (index {w['index']})",
                         f"{100 * w['objective']:.2f}%",
                         f"{100 * ev['test_accuracy']:.2f}%" if "test_accuracy" in ev else "–",
                         f"{100 * study.accuracy:.2f}%", f"{delta:+.2f}",
                         "yes" if abs(delta) <= ACCURACY_TOLERANCE_PP else "**no**"])
    out += [md_table(["what", "winner", "ours", "winner's test accuracy", "study", "Δ pp", "within 0.3 pp"],
                     acc_rows), ""]
    proj = res.get("projection")
    if proj:
        out += ["## Projection of the full study (from this slice)", ""]
        prow = [[STAGE_LABELS[k], "measured" if v.get("measured") else
                 f"{v.get('mean_trial_s', 0):.1f} s/trial × grid, calibration {v.get('calibration', 1):.2f}",
                 f"{(v.get('projected_s') or 0):,.0f}"] for k, v in proj["stages"].items()]
        prow.append(["data, worker start, evaluations", "measured", f"{proj['other_s']:,.0f}"])
        prow.append(["**total**", "", f"**{proj['total_s']:,.0f}** ({proj['total_s'] / 60:.1f} min; target ≤ 15 min: "
                     f"{'met' if proj['within_target'] else 'not met'})"])
        out += [md_table(["part", "how", "seconds"], prow), ""]
    out += ["## Trials", ""]
    trows = []
    for r in sorted(res.get("trials", []), key=lambda r: (r["stage"], r["index"])):
        c = r["config"]
        trows.append([r["name"], c["optimizer"], ",".join(c["activations"]), ",".join(map(str, c["filters"])),
                      f"{100 * r['objective']:.2f}%" if r.get("objective") is not None else r.get("error", "–"),
                      f"{r['wall_s']:.1f}", f"{r.get('train_seconds', 0):.1f}",
                      f"{r['steady_images_per_second']:,.0f}" if r.get("steady_images_per_second") else "–",
                      r.get("pid", "")])
    out += [md_table(["trial", "optimizer", "activations", "filters", "best val_accuracy", "wall s", "train s",
                      "images/s (after epoch 1)", "worker"], trows), ""]
    return "\n".join(out)


def _test_accuracy_row(label: str, what: str, record: dict, study: float) -> list[str]:
    """A Question 1 row of the accuracy table: our test accuracy (or the error) against the study's."""
    ta = record.get("test_accuracy")
    return [label, what, f"{100 * ta:.2f}%" if ta is not None else record.get("error", "–"), "–",
            f"{100 * study:.2f}%", f"{100 * (ta - study):+.2f}" if ta is not None else "–", "–"]


def _cache_note(cache: dict | None) -> str:
    """Whether the run started with JAX's compilation cache warm: first epochs then compile less."""
    if not cache:
        return ""
    n = cache.get("entries_at_start", 0)
    if n == 0:
        return "; JAX compilation cache cold (empty at the start)"
    return f"; JAX compilation cache **warm** ({n} entries at the start: first epochs compiled less than a first run's)"


def epoch_split(trials: list[dict]) -> tuple[str, str]:
    """The stage's mean first epoch and mean later epoch (each trial's median after the first), in seconds:
    what compiling costs beside training, or '–' where no trial recorded its epochs."""
    timed = [r["epoch_seconds"] for r in trials if len(r.get("epoch_seconds") or []) >= 2 and "error" not in r]
    if not timed:
        return "–", "–"
    return (f"{statistics.mean(e[0] for e in timed):,.1f}",
            f"{statistics.mean(statistics.median(e[1:]) for e in timed):,.1f}")


def _padding_note(layers: list | None, waste: dict | None) -> str:
    """The padded conv layers and what they cost in each stage (the TFLOP/s count each trial's own FLOPs)."""
    if not layers:
        return ""
    costs = ", ".join(f"{STAGE_LABELS[st]} {w:.3g}×" for st, w in (waste or {}).items() if w > 1)
    return (f"; conv layers {','.join(map(str, layers))} padded to each pack's largest filter count, so trials of "
            f"other shapes share a program ({costs or 'no stage padded'} its own FLOPs; the TFLOP/s below count each "
            "trial's own)")


def throughput_lines(t: dict | None) -> list[str]:
    """Images trained and the FLOP rate they mean (``bench.flops``: conv and dense multiply-adds, 3 x forward)."""
    if not t:
        return []
    return [f"- throughput: {t['images']:,} training images in {t['wall_s']:,.0f} s wall = "
            f"{t['images_per_second']:,.0f} images/s, **{t['tflops']:.3g} TFLOP/s** achieved "
            f"({t['pflop']:.3g} PFLOP of training)", ""]


def ceiling_lines(res: dict) -> list[str]:
    """The achieved TFLOP/s against the chip's dense datasheet peak and its measured GEMM rate, per precision."""
    t = res.get("throughput")
    if not t:
        return []
    gpus = (res.get("machine") or {}).get("gpus") or []
    gemm = res.get("gemm")
    peaks = datasheet_peaks(gpus[0]) if gpus else None
    head = (f"Against the chip ({peaks['label']}: NVIDIA's datasheet peak without sparsity" if peaks else
            f"Against the chip ({gpus[0] if gpus else 'no GPU'}: no datasheet peak known")
    head += (f"; GEMM measured here, n = {gemm['n']}, on {gemm['device']}):" if gemm and "rates" in gemm else
             f"; GEMM not measured{': ' + gemm['error'] if gemm and gemm.get('error') else ''}):")
    rows = ceiling_rows(t["tflops"], gemm, gpus, res.get("settings", {}))
    return [head, "", md_table(["precision", "datasheet peak TFLOP/s", "measured GEMM TFLOP/s",
                                "achieved / peak", "achieved / GEMM"], rows), ""]
