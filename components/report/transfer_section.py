"""Question 3 for the report: each base's transfer run beside the study's figures.

The rows come from the runs' ``metrics.json``; the study's columns and the bases'
names from their definitions (``components.transfer.bases``), so a new base needs
nothing here. Each run's own ``curves.png`` is the section's figure for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from components.core import storage
from components.report.section import Section, count, pct
from components.transfer.bases import BASES

METRICS_FILE = "metrics.json"


def transfer_runs(uris: Iterable[str]) -> dict[str, str]:
    """Run folders, in whatever order they come (the pipeline collects them from a loop), by base name:
    each run's ``metrics.json`` says its base. Ordered as the bases are defined; one run per base."""
    runs: dict[str, str] = {}
    for uri in uris:
        base = json.loads(storage.read_text(storage.join(uri, METRICS_FILE)))["base"]
        if base in runs:
            raise ValueError(f"two transfer runs of {base}: {runs[base]} and {uri}")
        runs[base] = uri
    order = list(BASES)
    return dict(sorted(runs.items(), key=lambda item: (order.index(item[0]) if item[0] in order else len(order),
                                                       item[0])))


def transfer_section(runs: Mapping[str, str]) -> Section:
    """One row per base beside the study's figures, one figure per base.

    ``runs``: base name -> run output folder (local or gs://).
    """
    table = [["base", "input", "weights", "validation accuracy before fine-tuning",
              "validation accuracy after fine-tuning", "test accuracy", "study: before", "study: after"]]
    notes, figures = [], {}
    for base, uri in runs.items():
        m = json.loads(storage.read_text(storage.join(uri, METRICS_FILE)))
        spec = BASES.get(base)
        size = m["input_shape"][0]
        alpha = m["settings"].get("alpha")
        table.append([m["constructor"] + (f" (α {alpha:g})" if alpha is not None else ""), f"{size}×{size}",
                      m["weights"]["kind"], pct(m["val_accuracy_frozen"]), pct(m["val_accuracy_finetuned"]),
                      pct(m["test_accuracy"]), pct(spec.study_val_accuracy_frozen if spec else None),
                      pct(spec.study_val_accuracy_finetuned if spec else None)])
        s = m["settings"]
        ft = m.get("fine_tune_from") or {}
        fine_tuning = (f"then {count(s['fine_tune_epochs'], 'epoch')} of fine-tuning from layer {ft['index']} "
                       f"({ft['layer']}; "
                       f"{m['params']['trainable_fine_tune']:,} trainable, learning rate "
                       f"{s['fine_tune_learning_rate']:g})" if ft else "no fine-tuning")
        notes.append(f"**{m['constructor']}** started from {m['weights']['description']}. "
                     f"{count(s['frozen_epochs'], 'epoch')} with the base frozen ({m['params']['trainable_frozen']:,} "
                     f"trainable parameters, learning rate {s['frozen_learning_rate']:g}), {fine_tuning}; "
                     f"test accuracy {pct(m['test_accuracy_frozen'])} before fine-tuning. "
                     f"{m['device']}, mixed precision {'on' if m['mixed_precision'] else 'off'}.")
        png = storage.join(uri, "curves.png")
        if storage.exists(png):
            figures[f"transfer_{base}_curves.png"] = storage.read_bytes(png)
    data = json.loads(storage.read_text(storage.join(next(iter(runs.values())), METRICS_FILE)))["data"] if runs else {}
    intro = ""
    if data:
        c = data["counts"]
        n = len(data["classes"])
        intro = (f"Target task: {data['kind']} with {n} classes ({', '.join(data['classes'])}; chance "
                 f"{pct(1 / n)}), {c['train']:,} training, {c['val']:,} validation and {c['test']:,} test images. "
                 "The study fine-tuned ImageNet weights on its own dataset; its figures stand beside ours for "
                 "shape, not as a like-for-like score.")
    return Section("Question 3: transfer learning", "\n\n".join([intro, *notes]).strip(), table, figures)
