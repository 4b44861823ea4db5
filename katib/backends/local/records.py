"""The per-trial record kept in the run folder: what ran, with what, and how it ended.

Each trial has ``run_dir/trials/<trial-name>/trial.json`` (written atomically
whenever the trial changes state) beside its ``stdout.log``. These records,
with the Optuna study, are what a resumed run starts from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from katib.backends.local.files import read_json, write_json_atomic

# Katib's trial conditions that a local trial can reach. Pending: asked for, not started yet.
PENDING = "Pending"
RUNNING = "Running"
SUCCEEDED = "Succeeded"
FAILED = "Failed"
EARLY_STOPPED = "EarlyStopped"
TERMINAL_STATES = (SUCCEEDED, FAILED, EARLY_STOPPED)
# States whose trials have an objective value Katib would consider for the optimum.
OBSERVED_STATES = (SUCCEEDED, EARLY_STOPPED)

# Katib's trial condition reasons.
REASON_CREATED = "TrialCreated"
REASON_RUNNING = "TrialRunning"
REASON_SUCCEEDED = "TrialSucceeded"
REASON_FAILED = "TrialFailed"
REASON_EARLY_STOPPED = "TrialEarlyStopped"
REASON_METRICS_UNAVAILABLE = "MetricsUnavailable"

TRIALS_FOLDER = "trials"
RECORD_FILE = "trial.json"
LOG_FILE = "stdout.log"


@dataclass
class TrialRecord:
    name: str
    # The Optuna trial this Katib trial is; a resumed trial keeps its number.
    number: int
    # Katib's parameterAssignments: [{name, value}] with string values.
    assignments: list[dict[str, str]]
    state: str = PENDING
    reason: str = REASON_CREATED
    message: str = ""
    # Katib's observation.metrics: [{name, min, max, latest}] as printed.
    metrics: list[dict[str, str]] = field(default_factory=list)
    objective_value: float | None = None
    objective_history: list[float] = field(default_factory=list)
    exit_code: int | None = None
    started_at: str = ""
    finished_at: str = ""
    # How many times the trial was started (an interrupted trial runs again).
    attempts: int = 0
    # The running attempt's process (its pid is its process group's id) and that process's start
    # time, so a later run can tell an orphan of this trial from an unrelated process with the pid.
    pid: int | None = None
    pid_identity: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def assignment_values(self) -> dict[str, str]:
        return {a["name"]: a["value"] for a in self.assignments}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


def trial_dir(run_dir: Path, trial_name: str) -> Path:
    return run_dir / TRIALS_FOLDER / trial_name


def save_record(run_dir: Path, record: TrialRecord) -> None:
    write_json_atomic(trial_dir(run_dir, record.name) / RECORD_FILE, record.to_dict())


def load_records(run_dir: Path) -> list[TrialRecord]:
    """Every trial recorded in ``run_dir``, in the order they were created."""
    records = []
    for path in sorted((run_dir / TRIALS_FOLDER).glob(f"*/{RECORD_FILE}")):
        data = read_json(path)
        if data is not None:
            records.append(TrialRecord.from_dict(data))
    return sorted(records, key=lambda r: r.number)
