"""What `study run` shows while kfp.local runs the pipeline: progress, not KFP's log.

kfp.local prints its own log (task start and end, each step's whole output) to
``sys.stdout``. During a run that stream goes to ``<run folder>/kfp-local.log``, and every
line of it is read here for the events that matter:

- a step starts or ends (KFP's ``Executing task 'x'`` / ``Task 'x' finished with status S``); the
  iterations of a loop's step (``dsl.ParallelFor``) run at once under the same task name, and the
  step ends with its last iteration. kfp.local 2.17 can lose a loop's last end line: each task
  swaps the root logger's handlers in and out (``kfp/local/logging_utils.local_logger_context``),
  so the first iteration to finish removes the handler the others log to. A loop's step still
  running when the next step starts, or when the pipeline ends, has therefore ended: kfp.local
  runs the next step only after all of a loop's iterations succeeded;
- a sweep's trial starts or ends (the local Katib backend's ``[trial] started:`` /
  ``[trial] Succeeded val_accuracy=…:``), from which trials done / total, the best so far
  and a time estimate follow;
- an epoch of the running trial ends (``epoch=N`` lines, Katib's metrics format).

On a terminal this is a live view (rich): one line per step with its state and elapsed time,
the running sweep's line and an epoch bar. Anywhere else (CI, a pipe) it is one plain line per
event, with no ANSI codes and no redraws.
"""

from __future__ import annotations

import collections
import io
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TextIO

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
TASK_START = re.compile(r"Executing task '([^']+)'")
TASK_END = re.compile(r"Task '([^']+)' finished with status (\w+)")
PIPELINE_END = re.compile(r"Pipeline '[^']+' finished with status")
TRIAL_START = re.compile(r"^\s*\[([^\]\s]+)\] started: ")
TRIAL_END = re.compile(r"^\s*\[([^\]\s]+)\] (Succeeded|Failed|EarlyStopped|MetricsUnavailable|Killed)"
                       r"(?: (\w+)=([-+\d.eE]+|nan|inf))?:")
EPOCH = re.compile(r"^\s*(?:\[([^\]\s]+)\] )?epoch=(\d+)\s")
TAIL_LINES = 30


@dataclass
class Step:
    name: str
    state: str = "waiting"  # waiting, running, succeeded, failed
    iterations: int = 1  # a loop's step: its iterations, each logged as the same task
    running: int = 0
    finished: int = 0
    started: float | None = None
    ended: float | None = None
    lines: collections.deque = field(default_factory=lambda: collections.deque(maxlen=TAIL_LINES))


@dataclass
class Sweep:
    total: int
    started: float
    done: int = 0
    best: float | None = None
    metric: str = ""


class Progress:
    """The run's state, fed one log line at a time; ``feed`` returns the plain events it caused."""

    def __init__(self, steps: Iterable[str], sweep_totals: dict[str, int], epochs: dict[str, int],
                 iterations: dict[str, int] | None = None, clock: Callable[[], float] = time.monotonic):
        self.steps = {name: Step(name, iterations=(iterations or {}).get(name, 1)) for name in steps}
        self.sweep_totals, self.epochs, self.clock = sweep_totals, epochs, clock
        self.sweeps: dict[str, Sweep] = {}
        self.current: str | None = None
        self.epoch: tuple[str, int] | None = None  # (trial or step, epoch)

    def feed(self, raw: str) -> list[str]:
        line = ANSI.sub("", raw).rstrip("\n")
        if match := TASK_START.search(line):
            return [*self._loops_ended(but=match.group(1)), *self._step_started(match.group(1))]
        if match := TASK_END.search(line):
            return self._step_ended(match.group(1), match.group(2))
        if PIPELINE_END.search(line):
            return self._loops_ended()
        if self.current is None:
            return []
        self.steps[self.current].lines.append(line)
        sweep = self.sweeps.get(self.current)
        if sweep is not None and (match := TRIAL_END.match(line)):
            return self._trial_ended(sweep, match)
        if sweep is not None and TRIAL_START.match(line):
            self.epoch = None
        elif match := EPOCH.match(line):
            self.epoch = (match.group(1) or self.current, int(match.group(2)))
        return []

    def _step_started(self, name: str) -> list[str]:
        step = self.steps.setdefault(name, Step(name))
        if step.running or step.finished:  # another iteration of a loop's step
            step.running += 1
            return [f"step {name}: iteration {step.finished + step.running} of {step.iterations} running"]
        step.state, step.started, step.running = "running", self.clock(), 1
        self.current, self.epoch = name, None
        if name in self.sweep_totals:
            self.sweeps[name] = Sweep(total=self.sweep_totals[name], started=self.clock())
        return [f"step {name}: running" + (f" ({step.iterations} iterations)" if step.iterations > 1 else "")]

    def _step_ended(self, name: str, status: str) -> list[str]:
        step = self.steps.setdefault(name, Step(name))
        step.running, step.finished = max(step.running - 1, 0), step.finished + 1
        outcome = "succeeded" if status == "SUCCESS" else "failed"
        if outcome == "failed":
            step.state = "failed"  # at once: the other iterations' end is not awaited to say so
        if step.finished < step.iterations:
            return [f"step {name}: iteration {step.finished} of {step.iterations} {outcome}"]
        if step.state != "failed":
            step.state = "succeeded"
        step.ended = self.clock()
        if self.current == name:
            self.current, self.epoch = None, None
        return [f"step {name}: {step.state} in {self.elapsed(step):.0f} s"]

    def _loops_ended(self, but: str | None = None) -> list[str]:
        """The end of every loop step still running (but ``but``): its end lines were lost."""
        events = []
        for step in self.steps.values():
            if step.name != but and step.iterations > 1 and step.state == "running":
                last: list[str] = []
                while step.state == "running":
                    last = self._step_ended(step.name, "SUCCESS")
                events += last  # the step's own end, not each lost iteration's
        return events

    def _trial_ended(self, sweep: Sweep, match: re.Match) -> list[str]:
        trial, state, metric, value = match.groups()
        sweep.done += 1
        self.epoch = None
        if metric and value and state != "Failed":
            sweep.metric = metric
            number = float(value)
            if number == number and (sweep.best is None or number > sweep.best):
                sweep.best = number
        result = f"{state}" + (f", {metric}={float(value):.4f}" if metric and value else "")
        return [f"sweep {self.current}: trial {sweep.done}/{sweep.total} done ({trial}: {result}); "
                + self.sweep_line(sweep)]

    def elapsed(self, step: Step) -> float:
        if step.started is None:
            return 0.0
        return (step.ended if step.ended is not None else self.clock()) - step.started

    def sweep_line(self, sweep: Sweep) -> str:
        best = f"best {sweep.metric} {sweep.best:.4f}" if sweep.best is not None else "no result yet"
        left = sweep.total - sweep.done
        if sweep.done and left > 0:
            seconds = (self.clock() - sweep.started) / sweep.done * left
            eta = f"about {seconds / 60:.0f} min left" if seconds >= 90 else f"about {seconds:.0f} s left"
        else:
            eta = "" if left <= 0 else "time left unknown until a trial ends"
        return ", ".join(filter(None, [best, eta]))

    def failing_step(self) -> Step | None:
        failed = [s for s in self.steps.values() if s.state == "failed"]
        running = [s for s in self.steps.values() if s.state == "running"]
        return (failed or running or [None])[0]

    def renderable(self):
        """The live view: a table of steps, then the running sweep and the epoch bar."""
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        marks = {"waiting": ("·", "dim"), "running": ("▶", "bold cyan"), "succeeded": ("✓", "green"),
                 "failed": ("✗", "bold red")}
        table = Table.grid(padding=(0, 2))
        for step in self.steps.values():
            mark, style = marks[step.state]
            state = step.state
            if step.iterations > 1 and state == "running":
                state += f" ({step.finished} of {step.iterations} iterations done)"
            table.add_row(Text(mark, style=style), Text(step.name, style=style), state,
                          f"{self.elapsed(step):.0f} s" if step.started is not None else "")
        parts = [table]
        sweep = self.sweeps.get(self.current or "")
        if sweep is not None:
            parts.append(Text(f"  trials {sweep.done}/{sweep.total}; {self.sweep_line(sweep)}"))
        if self.epoch is not None:
            who, epoch = self.epoch
            total = self.epochs.get(self.current or "")
            line = Table.grid(padding=(0, 1))
            if total:
                line.add_row(f"  {who}: epoch {epoch}/{total}", ProgressBar(total=total, completed=epoch, width=30))
            else:
                line.add_row(f"  {who}: epoch {epoch}")
            parts.append(line)
        return Group(*parts)


class LogTee(io.TextIOBase):
    """A text stream that writes to the log file and feeds every whole line to a callback."""

    def __init__(self, log: TextIO, on_line: Callable[[str], None]):
        self.log, self.on_line, self.buffer, self.lock = log, on_line, "", threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self.lock:
            self.log.write(text)
            self.buffer += text
            *whole, self.buffer = self.buffer.split("\n")
        for line in whole:
            self.on_line(line)
        return len(text)

    def flush(self) -> None:
        self.log.flush()

    def isatty(self) -> bool:
        return False
