"""Two GPU study runs side by side: what one setting (TF32, bf16, MPS, packing) changed.

    python -m bench.gpu_compare BASE OTHER [--out FILE.md]

BASE and OTHER are ``study.json`` files or the folders holding them (``bench.gpu_study``'s
``--out``). Trials are paired by their whole configuration (optimizer, learning rate,
activations, filters, epochs, batch size, seed), not by name: sweep B's trials are trained with
sweep A's winner, so where the two runs' A winners differ, B's and C's trials are different
models and are not paired (the report counts them); runs made with ``--chain study`` start B and C
from the study's published winners and so pair every trial. For each stage and over all paired trials it
gives the mean change of the best validation accuracy with its standard error
(``bench.stats.paired_mean_difference``), the winners' test accuracies, the wall times and the
achieved TFLOP/s. A bad file is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.gpu_study_helpers import STAGE_LABELS, STAGES, write_atomic
from bench.report import md_table
from bench.stats import paired_mean_difference

CONFIG_KEYS = ("optimizer", "learning_rate", "activations", "filters", "epochs", "batch_size", "seed")
COMPARED_SETTINGS = ("mode", "chain", "packed", "pack_slots", "pack_lowering", "epoch_loop", "parallel", "dtype_policy",
                     "matmul_precision", "mps", "checkpoints", "epochs")


class CompareError(ValueError):
    pass


def load_run(path: str | Path) -> dict:
    """A run's ``study.json`` (the file, or the folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "study.json"
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise CompareError(f"{path}: not a GPU study's study.json ({e.__class__.__name__}: {e})") from None
    if not isinstance(run, dict) or not isinstance(run.get("trials"), list):
        raise CompareError(f"{path}: not a GPU study's study.json (no trials)")
    run["_path"] = str(path)
    return run


def config_key(trial: dict) -> tuple:
    c = trial.get("config") or {}
    return tuple((k, json.dumps(c.get(k), sort_keys=True)) for k in CONFIG_KEYS)


def finished(run: dict) -> dict[tuple, dict]:
    """The run's trials that reached an objective, by stage and configuration."""
    return {(t["stage"], config_key(t)): t for t in run["trials"] if t.get("objective") is not None}


def compare(base: dict, other: dict) -> dict:
    a, b = finished(base), finished(other)
    common = sorted(set(a) & set(b), key=lambda k: (k[0], a[k].get("index", 0)))
    if not common:
        raise CompareError("the two runs have no trial in common (same stage and configuration)")
    stages = {}
    for stage in ("q1a", *STAGES):
        keys = [k for k in common if k[0] == stage]
        unpaired = (sum(1 for k in a if k[0] == stage and k not in b),
                    sum(1 for k in b if k[0] == stage and k not in a))
        if not keys and not any(unpaired):
            continue
        stages[stage] = {"paired": len(keys), "unpaired": unpaired,
                         "names": [a[k]["name"] for k in keys],
                         "difference": paired_mean_difference([a[k]["objective"] for k in keys],
                                                              [b[k]["objective"] for k in keys]) if keys else None}
    return {
        "base": base["_path"], "other": other["_path"],
        "settings": {k: (base.get("settings", {}).get(k), other.get("settings", {}).get(k))
                     for k in COMPARED_SETTINGS
                     if base.get("settings", {}).get(k) != other.get("settings", {}).get(k)},
        "stages": stages,
        "all": paired_mean_difference([a[k]["objective"] for k in common], [b[k]["objective"] for k in common]),
        "winners": {stage: ((base.get("stages", {}).get(stage) or {}).get("winner"),
                            (other.get("stages", {}).get(stage) or {}).get("winner"),
                            (base.get("evaluations") or {}).get(stage, {}).get("test_accuracy"),
                            (other.get("evaluations") or {}).get(stage, {}).get("test_accuracy"))
                    for stage in STAGES if stage in base.get("stages", {}) or stage in other.get("stages", {})},
        "wall_s": (base.get("wall_s"), other.get("wall_s")),
        "tflops": ((base.get("throughput") or {}).get("tflops"), (other.get("throughput") or {}).get("tflops")),
    }


def _pp(d: dict | None) -> str:
    if not d:
        return "–"
    se = d["standard_error"]
    return f"{100 * d['mean']:+.3f} ± {100 * se:.3f}" if se is not None else f"{100 * d['mean']:+.3f} (one pair)"


def _pct(x) -> str:
    return f"{100 * x:.2f}%" if x is not None else "–"


def render(c: dict) -> str:
    labels = {"q1a": "Q1A seed CNN", **STAGE_LABELS}
    out = ["# Two GPU study runs compared", "", f"- base: `{c['base']}`", f"- other: `{c['other']}`",
           "- settings that differ: " + (", ".join(f"{k} {a!r} → {b!r}" for k, (a, b) in c["settings"].items())
                                         or "none (a repeat: the differences are run-to-run noise)"), ""]
    walls, flops = c["wall_s"], c["tflops"]
    out += [f"- wall time: {walls[0] or 0:,.0f} s → {walls[1] or 0:,.0f} s; achieved TFLOP/s: "
            + (f"{flops[0]:.3g} → {flops[1]:.3g}" if None not in flops else "not recorded by both"), ""]
    out += ["## Best validation accuracy, other minus base, per paired trial", "",
            "Trials are paired by their whole configuration; mean ± standard error in percentage points.", ""]
    rows = [[labels[s], st["paired"], f"{st['unpaired'][0]} / {st['unpaired'][1]}", _pp(st["difference"])]
            for s, st in c["stages"].items()]
    rows.append(["**all paired trials**", c["all"]["n"], "", f"**{_pp(c['all'])}**"])
    out += [md_table(["stage", "paired trials", "unpaired (base / other)", "Δ pp, mean ± SE"], rows), ""]
    if any(st["unpaired"] != (0, 0) for st in c["stages"].values()):
        out += ["Unpaired trials were trained with a different earlier winner in the two runs, so they are "
                "different models (`bench.gpu_study --chain study` trains the same ones in both).", ""]
    out += ["## Winners", ""]
    wrows = []
    for stage, (wa, wb, ta, tb) in c["winners"].items():
        wrows.append([labels[stage], f"{(wa or {}).get('name', '–')} {_pct((wa or {}).get('objective'))}",
                      f"{(wb or {}).get('name', '–')} {_pct((wb or {}).get('objective'))}",
                      f"{_pct(ta)} → {_pct(tb)}"])
    out += [md_table(["stage", "base winner (val)", "other winner (val)", "winner's test accuracy"], wrows), ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gpu_compare", description=__doc__.splitlines()[0])
    p.add_argument("base", help="study.json (or its folder) of the baseline run")
    p.add_argument("other", help="study.json (or its folder) of the run with the changed setting")
    p.add_argument("--out", default=None, help="also write the Markdown here")
    args = p.parse_args(argv)
    try:
        text = render(compare(load_run(args.base), load_run(args.other)))
    except CompareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.out:
        write_atomic(Path(args.out), text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
