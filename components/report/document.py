"""The study report's sections, each built from the artifacts of one step, in the study's order.

Tables follow the study's shape (model, parameters, test accuracy) with the study's own
figure beside ours, so the report grows as steps are added to the pipeline. Rendering them
(Markdown, self-contained HTML) is ``components.report.render``.
"""

from __future__ import annotations

import json

from components.core import storage
from components.core.settings import STUDY_RESULTS
from components.report.section import Section, count, figure, pct, read_json
from components.report.transfer_section import transfer_section
from components.sweeps import SWEEPS, Sweep, get_sweep


def dataset_section(data_uri: str, note: str | None = None) -> Section:
    meta = read_json(storage.join(data_uri, "metadata.json"))
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


def run_scale_note(data_uri: str, model_uri: str, evaluation_uri: str,
                   sweep_uris: dict[str, str] | None = None) -> str | None:
    """For a run smaller than the study's: say so first, with what each part trained on, how far its
    numbers are and why."""
    counts = read_json(storage.join(data_uri, "metadata.json"))["counts"]
    trial = read_json(storage.join(model_uri, "metrics.json"))
    ours = read_json(storage.join(evaluation_uri, "metrics.json"))["test_accuracy"]
    cnn_images = trial.get("training_images") or counts["train"]
    sweep_trials = _sweep_trial_size(sweep_uris or {})
    sizes = [(cnn_images, trial["epochs"]), *([sweep_trials] if sweep_trials else [])]
    if all(images >= STUDY_TRAIN_IMAGES and epochs >= STUDY_EPOCHS for images, epochs in sizes):
        return None
    study = STUDY_RESULTS["study_cnn"]["test_accuracy"]
    trained = f"The hand-written CNN trained on {count(cnn_images, 'image')} for {count(trial['epochs'], 'epoch')}"
    if sweep_trials:
        trained += f"; each sweep trial on {count(sweep_trials[0], 'image')} for {count(sweep_trials[1], 'epoch')}"
    return (f"**A small run, made to show the flow.** {trained}; the study trained on "
            f"{STUDY_TRAIN_IMAGES:,} images for {STUDY_EPOCHS} epochs. Its numbers are therefore lower than the "
            f"study's — the hand-written CNN scores {pct(ours)} here against the study's {pct(study)} "
            f"({100 * (ours - study):+.1f} pp) — and the sweeps rank settings after a fraction of the training the "
            "study gave them, so close rankings can differ. `make run PROFILE=study` runs the study's sizes."
            + _bn_note(trial.get("config", {})))


def _sweep_trial_size(sweep_uris: dict[str, str]) -> tuple[int, int] | None:
    """The largest (training images, epochs) any sweep's trials recorded, or None where none recorded both."""
    recorded = [(t["training_images"], len(t["history"]))
                for uri in sweep_uris.values() for t in read_json(storage.join(uri, "summary.json"))["trials"]
                if "training_images" in t and "history" in t]
    return max(recorded) if recorded else None


def _bn_note(config: dict) -> str:
    momentum = config.get("bn_momentum", 0.99)
    if momentum == 0.99:
        return ""
    return (f" Batch norm's moving-average momentum is {momentum:g} here, not the study's (Keras') 0.99: its "
            "moving statistics keep momentum^steps of their start values, and a run this short would otherwise "
            "validate and test with statistics that are still mostly those start values.")


def study_cnn_section(model_uri: str, evaluation_uri: str, nas_uri: str | None = None) -> Section:
    """Question 1 part A: the hand-written CNN beside the study's figures."""
    trial = read_json(storage.join(model_uri, "metrics.json"))
    ev = read_json(storage.join(evaluation_uri, "metrics.json"))
    study = STUDY_RESULTS["study_cnn"]
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
        data = figure(storage.join(evaluation_uri, name))
        if data:
            figures[f"seed_cnn_{name}"] = data
    return Section("Question 1A: the hand-written CNN", intro, table, figures)


def nas_row(nas_uri: str) -> list[str]:
    """The search's best model as a row beside the hand-written CNN, with the study's AutoKeras model."""
    result = read_json(storage.join(nas_uri, "nas.json"))
    study = STUDY_RESULTS["autokeras_resnet"]
    return [f"AutoKeras search ({result['config']['block_type']} block)", f"{result['params']['total']:,}",
            pct(result["test_accuracy"]), f"{study['params']:,}", pct(study["test_accuracy"])]


def nas_section(nas_uri: str) -> Section:
    """Question 1B: every trial of the AutoKeras search, and its best model beside the study's."""
    result = read_json(storage.join(nas_uri, "nas.json"))
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
             f"trials of {count(cfg['epochs'], 'epoch')} (batch {cfg['batch_size']}) in "
             f"{result['search_seconds'] / 60:.1f} minutes. Best: trial {best['trial_id']} at "
             f"{pct(best[objective])} validation accuracy, "
             f"{pct(result['test_accuracy'])} on {result['test_images']:,} test images, with {params['total']:,} "
             f"parameters ({params['trainable']:,} trainable, {params['non_trainable']:,} non-trainable); the "
             f"study's search found {study['params']:,} parameters and {pct(study['test_accuracy'])}."
             + (f"\n\nEvery trial: {shared}." if shared else ""))
    return Section("Question 1B: the AutoKeras search", intro, table)


def sweep_sections(sweep_uris: dict[str, str]) -> list[Section]:
    """Question 2: one section per sweep given (components/sweeps.py, in chain order), beside the study's winner."""
    for stage in sweep_uris:
        get_sweep(stage)  # an unknown stage is a clear error, not a missing section
    return [sweep_section(sweep, read_json(storage.join(sweep_uris[name], "summary.json")))
            for name, sweep in SWEEPS.items() if name in sweep_uris]


def sweep_section(sweep: Sweep, s: dict) -> Section:
    """A one-parameter sweep ranks every trial; a grid sets our winner's combination beside the study's."""
    study = sweep.study
    fixed = ", ".join(f"{k} {v}" for k, v in s["fixed"].items() if k != sweep.setting)
    if len(sweep.parameters) == 1:
        rows = sorted((t for t in s["trials"] if t["val_accuracy"] is not None), key=lambda t: -t["val_accuracy"])
        table = [[sweep.parameters[0].name, "validation accuracy", "trial state"]]
        table += [[t["combination"][0], pct(t["val_accuracy"]), t["state"]] for t in rows]
        table += [[t["combination"][0], "—", f"{t['state']} ({t['reason']})"]
                  for t in s["trials"] if t["val_accuracy"] is None]
        if study:  # the study published its winner's figure alone: it stands in that row
            table[0].append("study")
            for row in table[1:]:
                row.append(f"{pct(study.accuracy)} (its best)" if (row[0],) == tuple(study.best) else "—")
        compared = (f" (study: {', '.join(study.best)} at {pct(study.accuracy)}"
                    f"{f'; {study.note}' if study.note else ''})" if study else "")
        ran = f"{_ran(s, 'grid points')}; {s['condition']}: {s['reason']}."
        intro = (f"Best: **{s['best'][sweep.setting]}** at {pct(s['val_accuracy'])}{compared}. "
                 + (f"With {fixed} held fixed: {ran}" if sweep.after else ran))
    else:
        names = f"{sweep.parameters[0].name}..{sweep.parameters[-1].name}"
        table = [["", f"combination ({names})", "index (study numbering)", "validation accuracy"],
                 ["ours", ", ".join(s["best_combination"]), _numbered(s["best_index"]), pct(s["val_accuracy"])]]
        if study:
            table.append(["study", ", ".join(study.best), _numbered(study.index), pct(study.accuracy)])
        intro = f"With {fixed} held fixed: {_ran(s, 'combinations')}; {s['condition']}: {s['reason']}."
    epochs = {len(t["history"]) for t in s["trials"] if t.get("history")}
    if epochs == {1}:
        intro += " Each trial trained 1 epoch: no learning curves to draw."
    return Section(sweep.title, intro, table, _sweep_figures(sweep, s))


def _ran(s: dict, points: str) -> str:
    """How much of the grid the trials ran: hyperband and pbt run a point more than once."""
    trials, distinct = len(s["trials"]), len({tuple(t["combination"]) for t in s["trials"]})
    if distinct == trials:
        return f"{trials} of {s['grid_size']} {points} ran"
    return f"{trials} trials ran {distinct} of the {s['grid_size']} {points}"


def _numbered(index: int | None) -> str:
    return "—" if index is None else f"{index} (combination {index + 1})"


def _sweep_figures(sweep: Sweep, summary: dict) -> dict[str, bytes]:
    from components.report.figures import grid_heatmap, objective_bars, parallel_coordinates, top_trial_curves

    study = sweep.study
    label = sweep.label[:1].upper() + sweep.label[1:]
    figures = {f"sweep_{sweep.name}_objective.png": objective_bars(
        summary, label, study.accuracy if study else None, ", ".join(study.best) if study else "")}
    if len(sweep.parameters) > 1:
        figures[f"sweep_{sweep.name}_heatmap.png"] = grid_heatmap(summary, label, study.best if study else None)
    figures[f"sweep_{sweep.name}_curves.png"] = top_trial_curves(summary, label)
    figures[f"sweep_{sweep.name}_parallel.png"] = parallel_coordinates(summary, label)
    return {name: data for name, data in figures.items() if data}


def study_sections(data_uri: str, model_uri: str, evaluation_uri: str, nas_uri: str | None = None,
                   sweep_uris: dict[str, str] | None = None,
                   transfer_uris: dict[str, str] | None = None) -> list[Section]:
    """Every section the given steps' outputs allow, in the study's order."""
    return [
        dataset_section(data_uri, run_scale_note(data_uri, model_uri, evaluation_uri, sweep_uris)),
        study_cnn_section(model_uri, evaluation_uri, nas_uri=nas_uri),
        *([nas_section(nas_uri)] if nas_uri else []),
        *sweep_sections(sweep_uris or {}),
        *([transfer_section(transfer_uris)] if transfer_uris else []),
    ]
