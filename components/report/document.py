"""The study report: Markdown for people and repositories, self-contained HTML for the KFP UI.

Tables follow the study's shape (model, parameters, test accuracy) with the
study's own figure beside ours. Each section is built from the artifacts of
one step, so the report grows as steps are added to the pipeline.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field

from components.core import storage
from components.core.settings import STUDY_RESULTS


@dataclass
class Section:
    title: str
    intro: str = ""
    table: list[list[str]] = field(default_factory=list)  # first row: header
    figures: dict[str, bytes] = field(default_factory=dict)  # file name -> PNG bytes


def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def _read_json(uri: str) -> dict:
    return json.loads(storage.read_text(uri))


def _figure(uri: str) -> bytes | None:
    return storage.read_bytes(uri) if storage.exists(uri) else None


def dataset_section(data_uri: str, note: str | None = None) -> Section:
    meta = _read_json(storage.join(data_uri, "metadata.json"))
    counts = meta["counts"]
    return Section(
        "Data",
        (f"{note}\n\n" if note else "") +
        f"Fashion-MNIST from `{meta['source']}`: {counts['train']:,} training, "
        f"{counts['val']:,} validation and {counts['test']:,} test images "
        f"(stratified split, seed {meta['settings']['seed']}).",
    )


# The study's own run: all of Fashion-MNIST's training images less a 10% validation split, 10 epochs.
STUDY_TRAIN_IMAGES, STUDY_EPOCHS = 54_000, 10


def run_scale_note(data_uri: str, model_uri: str, evaluation_uri: str) -> str | None:
    """For a run smaller than the study's: say so first, with how far its numbers are and why."""
    counts = _read_json(storage.join(data_uri, "metadata.json"))["counts"]
    trial = _read_json(storage.join(model_uri, "metrics.json"))
    ours = _read_json(storage.join(evaluation_uri, "metrics.json"))["test_accuracy"]
    if counts["train"] >= STUDY_TRAIN_IMAGES and trial["epochs"] >= STUDY_EPOCHS:
        return None
    study = STUDY_RESULTS["seed_cnn"]["test_accuracy"]
    return (f"**A small run, made to show the flow.** It trained on {counts['train']:,} images for "
            f"{trial['epochs']} epoch(s) per model; the study used {STUDY_TRAIN_IMAGES:,} images and "
            f"{STUDY_EPOCHS} epochs. Its numbers are therefore lower than the study's — the hand-written CNN "
            f"scores {pct(ours)} here against the study's {pct(study)} ({100 * (ours - study):+.1f} pp) — and the "
            "sweeps rank settings after a fraction of the training the study gave them, so close rankings can "
            "differ. `make run PROFILE=seed` runs the study's sizes." + _bn_note(trial.get("config", {})))


def _bn_note(config: dict) -> str:
    momentum = config.get("bn_momentum", 0.99)
    if momentum == 0.99:
        return ""
    return (f" Batch norm's moving-average momentum is {momentum:g} here, not the study's (Keras') 0.99: its "
            "moving statistics keep momentum^steps of their start values, and a run this short would otherwise "
            "validate and test with statistics that are still mostly those start values.")


def seed_cnn_section(model_uri: str, evaluation_uri: str, nas_uri: str | None = None) -> Section:
    """Question 1 part A: the hand-written CNN beside the study's figures."""
    trial = _read_json(storage.join(model_uri, "metrics.json"))
    ev = _read_json(storage.join(evaluation_uri, "metrics.json"))
    study = STUDY_RESULTS["seed_cnn"]
    cfg = trial["config"]
    table = [
        ["model", "parameters", "test accuracy", "study: parameters", "study: test accuracy"],
        ["hand-written CNN", f"{ev['params']['total']:,}", pct(ev["test_accuracy"]),
         f"{study['params']:,}", pct(study["test_accuracy"])],
    ]
    if nas_uri:
        table.append(nas_row(nas_uri))
    intro = (f"Optimizer {cfg['optimizer']}, activations {', '.join(cfg['activations'])}, filters "
             f"{', '.join(map(str, cfg['filters']))}; {trial['epochs']} epochs of batch {cfg['batch_size']} "
             f"at {trial.get('steady_images_per_second') or trial['train_images_per_second']:.0f} training "
             f"images/s after the first epoch ({trial['keras_backend']} backend). "
             f"Best validation accuracy {pct(trial['best']['val_accuracy'])} at epoch {trial['best']['epoch']}; "
             f"test loss {ev['test_loss']:.4f}.\n\nPer-class test accuracy: "
             + ", ".join(f"{name} {pct(acc)}" for name, acc in ev["per_class_accuracy"].items()) + ".")
    figures = {}
    for name in ("curves.png", "confusion_matrix.png"):
        data = _figure(storage.join(evaluation_uri, name))
        if data:
            figures[f"seed_cnn_{name}"] = data
    return Section("Question 1A: the hand-written CNN", intro, table, figures)


def nas_row(nas_uri: str) -> list[str]:
    """The search's best model as a row beside the hand-written CNN, with the study's AutoKeras model."""
    result = _read_json(storage.join(nas_uri, "nas.json"))
    study = STUDY_RESULTS["autokeras_resnet"]
    return [f"AutoKeras search ({result['config']['block_type']} block)", f"{result['params']['total']:,}",
            pct(result["test_accuracy"]), f"{study['params']:,}", pct(study["test_accuracy"])]


def nas_section(nas_uri: str) -> Section:
    """Question 1B: every trial of the AutoKeras search, and its best model beside the study's."""
    result = _read_json(storage.join(nas_uri, "nas.json"))
    cfg, params, best, objective = result["config"], result["params"], result["best_trial"], result["objective"]
    study = STUDY_RESULTS["autokeras_resnet"]
    short = lambda name: "/".join(name.split("/")[-2:])  # noqa: E731 - block/hyperparameter
    values = [t["hyperparameters"] for t in result["trials"]]
    names = list(dict.fromkeys(name for v in values for name in v))
    varying = [n for n in names if len({json.dumps(v.get(n)) for v in values}) > 1]
    table = [["trial", "worker", "status", "validation accuracy", "hyperparameters that vary"]]
    table += [[t["trial_id"], t["tuner_id"] or "—", t["status"], pct(t[objective]),
               ", ".join(f"{short(n)}={t['hyperparameters'].get(n, '—')}" for n in varying)]
              for t in result["trials"]]
    shared = ", ".join(f"{short(n)}={values[0][n]}" for n in names if n not in varying and n in values[0])
    intro = (f"ImageBlock(block_type={cfg['block_type']}, normalize={cfg['normalize']}, augment={cfg['augment']}), "
             f"pretrained={cfg['pretrained']}; {cfg['tuner']} tuner, {len(result['trials'])} of {cfg['max_trials']} "
             f"trials of {cfg['epochs']} epochs (batch {cfg['batch_size']}) in {result['search_seconds'] / 60:.1f} "
             f"minutes. Best: trial {best['trial_id']} at {pct(best[objective])} validation accuracy, "
             f"{pct(result['test_accuracy'])} on {result['test_images']:,} test images, with {params['total']:,} "
             f"parameters ({params['trainable']:,} trainable, {params['non_trainable']:,} non-trainable); the "
             f"study's search found {study['params']:,} parameters and {pct(study['test_accuracy'])}."
             + (f"\n\nEvery trial: {shared}." if shared else ""))
    return Section("Question 1B: the AutoKeras search", intro, table)


def _study_value(stage: str, key: str):
    return STUDY_RESULTS[f"sweep_{stage}"].get(key)


def sweep_sections(sweep_uris: dict[str, str]) -> list[Section]:
    """Question 2: the three chained sweeps, each beside the study's winner."""
    summaries = {stage: _read_json(storage.join(uri, "summary.json")) for stage, uri in sweep_uris.items()}
    sections = []
    if "optimizer" in summaries:
        s = summaries["optimizer"]
        rows = sorted((t for t in s["trials"] if t["val_accuracy"] is not None),
                      key=lambda t: -t["val_accuracy"])
        table = [["optimizer", "validation accuracy", "trial state"]]
        table += [[t["combination"][0], pct(t["val_accuracy"]), t["state"]] for t in rows]
        table += [[t["combination"][0], "—", f"{t['state']} ({t['reason']})"]
                  for t in s["trials"] if t["val_accuracy"] is None]
        intro = (f"Best: **{s['best']['optimizer']}** at {pct(s['val_accuracy'])} "
                 f"(study: {_study_value('optimizer', 'best')} at {pct(_study_value('optimizer', 'accuracy'))}; "
                 f"Ftrl at its default settings stayed near 10% in the study). "
                 f"{len(s['trials'])} of {s['grid_size']} grid points ran; {s['condition']}: {s['reason']}.")
        sections.append(Section("Question 2A: optimizers", intro, table,
                                _sweep_figures("optimizer", sweep_uris["optimizer"])))
    for stage, label in (("activations", "activations per conv layer"), ("filters", "filters per conv layer")):
        if stage not in summaries:
            continue
        s = summaries[stage]
        study_best = _study_value(stage, "best")
        table = [["", "combination (conv1..conv4)", "index (study numbering)", "validation accuracy"],
                 ["ours", ", ".join(s["best_combination"]), f"{s['best_index']} (combination {s['best_index'] + 1})",
                  pct(s["val_accuracy"])],
                 ["study", ", ".join(map(str, study_best)), f"{_study_value(stage, 'index')} "
                  f"(combination {_study_value(stage, 'index') + 1})", pct(_study_value(stage, "accuracy"))]]
        fixed = ", ".join(f"{k} {v}" for k, v in s["fixed"].items() if k != stage)
        intro = (f"With {fixed} held fixed: {len(s['trials'])} of {s['grid_size']} combinations ran; "
                 f"{s['condition']}: {s['reason']}.")
        sections.append(Section(f"Question 2{'B' if stage == 'activations' else 'C'}: {label}", intro, table,
                                _sweep_figures(stage, sweep_uris[stage])))
    return sections


def _sweep_figures(stage: str, uri: str) -> dict[str, bytes]:
    from components.report.figures import grid_heatmap, objective_bars

    summary = _read_json(storage.join(uri, "summary.json"))
    best = _study_value(stage, "best")
    label = {"optimizer": "Sweep A, optimizers", "activations": "Sweep B, activations",
             "filters": "Sweep C, filters"}.get(stage, stage)
    study_label = best if isinstance(best, str) else ", ".join(map(str, best))
    figures = {f"sweep_{stage}_objective.png": objective_bars(summary, label, _study_value(stage, "accuracy"),
                                                                study_label)}
    if not isinstance(best, str):
        figures[f"sweep_{stage}_heatmap.png"] = grid_heatmap(summary, label, best)
    return {name: data for name, data in figures.items() if data}


def transfer_section(runs: dict[str, str]) -> Section:
    """Question 3: each base's run beside the study's figures (built next to its metrics, in components.transfer)."""
    from components.report.transfer_section import transfer_section as build

    return build(runs)


def study_sections(data_uri: str, model_uri: str, evaluation_uri: str, nas_uri: str | None = None,
                   sweep_uris: dict[str, str] | None = None,
                   transfer_uris: dict[str, str] | None = None) -> list[Section]:
    """Every section the given steps' outputs allow, in the study's order."""
    return [
        dataset_section(data_uri, run_scale_note(data_uri, model_uri, evaluation_uri)),
        seed_cnn_section(model_uri, evaluation_uri, nas_uri=nas_uri),
        *([nas_section(nas_uri)] if nas_uri else []),
        *sweep_sections(sweep_uris or {}),
        *([transfer_section(transfer_uris)] if transfer_uris else []),
    ]


def section_markdown(section: Section, figure_src: dict[str, str] | None = None) -> str:
    """One section's body in Markdown (no heading); ``figure_src`` maps a figure to another link."""
    lines = []
    if section.intro:
        lines += [section.intro, ""]
    if section.table:
        header, *rows = section.table
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        lines.append("")
    lines += [f"![{name}]({(figure_src or {}).get(name, name)})" for name in section.figures]
    if section.figures:
        lines.append("")
    return "\n".join(lines)


def render_markdown(title: str, sections: list[Section]) -> str:
    lines = [f"# {title}", ""]
    for s in sections:
        lines += [f"## {s.title}", "", section_markdown(s)]
    return "\n".join(lines)


def anchor(title: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in title.lower()).split())


STYLE = """
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;max-width:60em;
margin:2em auto;padding:0 1em}
h1{font-size:1.8em;border-bottom:1px solid #d0d7de;padding-bottom:.3em}
h2{font-size:1.35em;margin-top:2em;border-bottom:1px solid #eaeef2;padding-bottom:.2em}
nav{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.6em 1.2em;display:inline-block}
nav ol{margin:.3em 0;padding-left:1.4em}
table{border-collapse:collapse;margin:1em 0;font-variant-numeric:tabular-nums}
td,th{border:1px solid #d0d7de;padding:.3em .7em;text-align:right}
th{background:#f6f8fa}
td:first-child,th:first-child{text-align:left}
tr:nth-child(even) td{background:#fafbfc}
img{max-width:100%;height:auto;display:block;margin:1em 0}
code{background:#f6f8fa;padding:.1em .3em;border-radius:4px;font-size:90%}
"""


def render_html(title: str, sections: list[Section]) -> str:
    """One self-contained page: the Markdown rendered by markdown-it-py, a table of contents, figures inlined."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    toc = "".join(f"<li><a href='#{anchor(s.title)}'>{html.escape(s.title)}</a></li>" for s in sections)
    out = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
           f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{html.escape(title)}</title>"
           f"<style>{STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
           f"<nav><strong>Contents</strong><ol>{toc}</ol></nav>"]
    for s in sections:
        inline = {name: "data:image/png;base64," + base64.b64encode(data).decode("ascii")
                  for name, data in s.figures.items()}
        out.append(f"<section id='{anchor(s.title)}'><h2>{html.escape(s.title)}</h2>")
        out.append(md.render(section_markdown(s, inline)))
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out)


def write_report(sections: list[Section], out_uri: str, title: str = "Fashion-MNIST study") -> dict[str, str]:
    """Write report.md (+ its figures) and report.html; the HTML, written last, marks completion."""
    storage.check_writable(out_uri)
    for s in sections:
        for name, data in s.figures.items():
            storage.write_bytes(storage.join(out_uri, name), data)
    md_uri, html_uri = storage.join(out_uri, "report.md"), storage.join(out_uri, "report.html")
    storage.write_text(md_uri, render_markdown(title, sections))
    storage.write_text(html_uri, render_html(title, sections))
    return {"markdown": md_uri, "html": html_uri}
