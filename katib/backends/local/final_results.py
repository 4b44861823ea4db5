"""The files a finished local Experiment leaves in its run folder, and its one-line summary."""

from __future__ import annotations

from pathlib import Path

from katib.backends.local.experiment_spec import ExperimentSpec
from katib.backends.local.hparams import TENSORBOARD_FOLDER, write_hparams
from katib.backends.local.plots import OBJECTIVE_PNG, TRIALS_HTML, write_objective_plot, write_trials_html
from katib.backends.local.records import EARLY_STOPPED, FAILED, SUCCEEDED
from katib.backends.local.results import (
    OPTIMAL_TRIAL_JSON,
    STATUS_JSON,
    TRIALS_CSV,
    TRIALS_JSON,
    ExperimentResult,
    trial_table,
    write_live_results,
    write_trials_csv,
)


def write_final_results(run_dir: Path, result: ExperimentResult, spec: ExperimentSpec, study_file: str) -> None:
    """trials.csv/html, the objective plot, TensorBoard HParams, then the JSON files (status last)."""
    records = result.trials
    files = {"trials_csv": TRIALS_CSV, "trials_json": TRIALS_JSON, "optimal_trial": OPTIMAL_TRIAL_JSON}
    write_trials_csv(run_dir / TRIALS_CSV, records, spec)
    columns, rows = trial_table(records, spec)
    write_trials_html(run_dir / TRIALS_HTML, columns, rows, f"Experiment {spec.name}", summary_line(result))
    files["trials_html"] = TRIALS_HTML
    if write_objective_plot(run_dir / OBJECTIVE_PNG, records, spec):
        files["objective_plot"] = OBJECTIVE_PNG
    final_metrics = {row[0]: dict(zip(columns, row)) for row in rows}
    write_hparams(run_dir, records, spec, final_metrics)
    files.update(tensorboard=TENSORBOARD_FOLDER, study=study_file, status=STATUS_JSON)
    result.files = files
    write_live_results(run_dir, result)  # the status file last: it lists the others


def summary_line(result: ExperimentResult) -> str:
    counts = ", ".join(
        f"{len(result.trials_in(state))} {state.lower()}" for state in (SUCCEEDED, FAILED, EARLY_STOPPED)
    )
    text = f"{len(result.trials)} trials ({counts})"
    best = result.optimal_trial
    if best:
        settings = ", ".join(f"{a['name']}={a['value']}" for a in best["parameterAssignments"])
        text += f"; best {best['bestTrialName']}: {settings}"
    return f"{text}. {result.message}"
