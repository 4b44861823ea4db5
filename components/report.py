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

from components import storage
from components.settings import STUDY_RESULTS


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


def dataset_section(data_uri: str) -> Section:
    meta = _read_json(storage.join(data_uri, "metadata.json"))
    counts = meta["counts"]
    return Section(
        "Data",
        f"Fashion-MNIST from `{meta['source']}`: {counts['train']:,} training, "
        f"{counts['val']:,} validation and {counts['test']:,} test images "
        f"(stratified split, seed {meta['settings']['seed']}).",
    )


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
    data = _figure(storage.join(uri, "objective.png"))
    return {f"sweep_{stage}_objective.png": data} if data else {}


def transfer_section(runs: dict[str, str]) -> Section:
    """Question 3: each base's run beside the study's figures (built next to its metrics, in components.transfer)."""
    from components.transfer import transfer_section as build

    return build(runs)


def study_sections(data_uri: str, model_uri: str, evaluation_uri: str, nas_uri: str | None = None,
                   sweep_uris: dict[str, str] | None = None,
                   transfer_uris: dict[str, str] | None = None) -> list[Section]:
    """Every section the given steps' outputs allow, in the study's order."""
    return [
        dataset_section(data_uri),
        seed_cnn_section(model_uri, evaluation_uri, nas_uri=nas_uri),
        *([nas_section(nas_uri)] if nas_uri else []),
        *sweep_sections(sweep_uris or {}),
        *([transfer_section(transfer_uris)] if transfer_uris else []),
    ]


def render_markdown(title: str, sections: list[Section]) -> str:
    lines = [f"# {title}", ""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        if s.intro:
            lines += [s.intro, ""]
        if s.table:
            header, *rows = s.table
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "|".join("---" for _ in header) + "|")
            lines += ["| " + " | ".join(r) + " |" for r in rows]
            lines.append("")
        lines += [f"![{name}]({name})" for name in s.figures]
        if s.figures:
            lines.append("")
    return "\n".join(lines)


def render_html(title: str, sections: list[Section]) -> str:
    """One file with the figures inlined, so the KFP UI shows it without other artifacts."""
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
           "<style>body{font-family:sans-serif;max-width:70em;margin:auto}table{border-collapse:collapse}"
           "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}"
           "td:first-child,th:first-child{text-align:left}img{max-width:100%}</style></head><body>",
           f"<h1>{html.escape(title)}</h1>"]
    for s in sections:
        out.append(f"<h2>{html.escape(s.title)}</h2>")
        for para in filter(None, s.intro.split("\n\n")):
            out.append(f"<p>{html.escape(para)}</p>")
        if s.table:
            header, *rows = s.table
            out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows]
            out.append("</table>")
        for name, data in s.figures.items():
            b64 = base64.b64encode(data).decode("ascii")
            out.append(f"<p><img alt='{html.escape(name)}' src='data:image/png;base64,{b64}'></p>")
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
