"""Search efficiency (item 5): how many trial-epochs each strategy spends to find a near-best setting.

The full grid is run once, for real, through the local Katib backend; every
other strategy is then replayed on its recorded per-epoch objectives (a tabular
benchmark): the medianstop-pruned grid with Katib's own rule
(:mod:`katib.backends.local.early_stopping`) in the order the grid ran, TPE and random
search with the Optuna samplers the local backend would create
(:func:`katib.backends.local.samplers.create_sampler`), over several seeds, and
hyperband with the local backend's re-implementation of Katib's service
(:class:`katib.backends.local.hyperband.HyperbandService`), its resource being
the trial's epochs (:func:`hyperband_events`). A replayed
trial costs what it would have cost live (its epochs, or fewer when stopped)
and finds what the real trial found; where trials are deterministic (fixed
seeds) that is what a live run of the strategy would see.

A curve is a list of ``(trial_epochs_spent, best_objective_so_far)`` points.

Hyperband is replayed exactly where trials are deterministic and resuming-free:
a hyperband trial with budget r is a new run trained for r epochs from scratch
(Katib's hyperband never resumes), and with the trial seed fixed its first r
epochs are the recorded trial's first r epochs, so it is seen at the best of
``history[:r]`` (the objective's ``max`` strategy). Its cost is counted in
item 5's unit, the recorded steps: item 5's trials print one line per epoch and
one final line (the best epoch's value again), so a trial of r epochs costs
r + 1, as the grid's trials of E epochs cost E + 1, and ``r_l`` is E.

PBT is not replayed: it cannot be, honestly, on this table. A PBT child trains
on from its parent's checkpoint with other hyperparameters (here: other
activation functions on the parent's weights), for the steps after the
parent's; the grid recorded only runs from scratch with one setting, and only
for the trial's fixed number of epochs, so neither what a child would see nor
anything past the first generation is in it. Reading a child as the recorded
curve of its own setting would ignore the hand-over, which is all PBT adds.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

Key = tuple[str, ...]
Curve = list[tuple[int, float | None]]


@dataclass(frozen=True)
class Event:
    """One finished trial: what it cost and what it contributes to the best found (None: nothing)."""

    epochs: int
    value: float | None


def best_so_far(events: Sequence[Event]) -> Curve:
    curve, spent, best = [], 0, None
    for e in events:
        spent += e.epochs
        if e.value is not None and (best is None or e.value > best):
            best = e.value
        curve.append((spent, best))
    return curve


def epochs_to_reach(curve: Curve, threshold: float) -> int | None:
    """Trial-epochs spent when the best found first reaches ``threshold`` (None: never)."""
    for spent, best in curve:
        if best is not None and best >= threshold - 1e-12:
            return spent
    return None


def grid_events(order: Sequence[Key], histories: Mapping[Key, Sequence[float]]) -> list[Event]:
    """The grid as it ran: every trial to its last epoch, its value the best epoch (Katib's max)."""
    return [Event(len(histories[k]), max(histories[k]) if histories[k] else None) for k in order]


def medianstop_events(order: Sequence[Key], histories: Mapping[Key, Sequence[float]],
                      min_trials_required: int, start_step: int) -> list[Event]:
    """The same grid with Katib's median stop: each trial gets the rule that holds when it starts."""
    from katib.backends.local.early_stopping import MedianStopSettings, StoppingRule, median_stop_value

    settings = MedianStopSettings(min_trials_required=min_trials_required, start_step=start_step)
    succeeded: list[Sequence[float]] = []
    events = []
    for key in order:
        history = list(histories[key])
        value = median_stop_value(succeeded, settings)
        rule = None if value is None else StoppingRule(value=value, start_step=start_step, maximize=True)
        ran = len(history)
        for step, objective in enumerate(history, start=1):
            if rule is not None and rule.should_stop(objective):
                ran = step
                break
        seen = history[:ran]
        # Katib counts early-stopped trials' observations for the optimum, as succeeded ones.
        events.append(Event(ran, max(seen) if seen else None))
        if ran == len(history):
            succeeded.append(history)
    return events


def sampler_events(make_sampler: Callable[[], object], space: Mapping[str, object],
                   key_of: Callable[[dict], Key], histories: Mapping[Key, Sequence[float]],
                   budget_trials: int) -> list[Event]:
    """A sampler asked for ``budget_trials`` trials, each answered from the recorded table.

    A repeated suggestion is a new trial in Katib and costs its epochs again.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=make_sampler())
    events = []
    for _ in range(budget_trials):
        trial = study.ask(fixed_distributions=dict(space))
        history = histories[key_of(trial.params)]
        value = max(history)
        study.tell(trial, value)
        events.append(Event(len(history), value))
    return events


# The resource parameter the hyperband replay adds: the grid ran every trial for all its epochs.
REPLAY_RESOURCE = "replay-epochs"


def hyperband_events(parameters: Sequence[dict], histories: Mapping[Key, Sequence[float]], eta: int,
                     parallel: int, seed: int, final_steps: int = 1) -> list[Event]:
    """Katib's hyperband over the grid's parameters, each trial answered from the recorded table.

    ``final_steps``: the steps a trial records after its epochs (item 5's: one final line).

    The controller is played as the local backend plays it: each request asks for
    the free slots (parallel - running), trials end in order of their budget (a
    trial of r steps takes r time units), and the end is the service's empty reply.
    Events come in the order trials end.
    """
    import dataclasses
    import heapq
    import random

    from katib.backends.local.experiment_spec import read_experiment
    from katib.backends.local.hyperband import HyperbandService
    from katib.backends.local.records import RUNNING, SUCCEEDED, TrialRecord

    steps = max(len(h) for h in histories.values()) - final_steps  # the epochs: r_l
    resource = {"name": REPLAY_RESOURCE, "parameterType": "int", "feasibleSpace": {"min": "1", "max": str(steps)}}
    spec = dataclasses.replace(
        read_experiment(_replay_experiment(parameters)), parameters=(*parameters, resource),
        algorithm_name="hyperband", parallel_trial_count=parallel,
        algorithm_settings={"resource_name": REPLAY_RESOURCE, "r_l": str(steps), "eta": str(eta)})
    service = HyperbandService(spec)
    service.random = random.Random(seed)
    records: list[TrialRecord] = []
    running: list[tuple[float, int, TrialRecord]] = []
    events, now, ended = [], 0.0, False
    while True:
        request = parallel - len(running)
        reply = service.suggest(request, records) if request > 0 and not ended else None
        if reply:
            for suggestion in reply:
                record = TrialRecord(name=f"hb-{len(records)}", number=len(records),
                                     assignments=suggestion.assignments, state=RUNNING)
                records.append(record)
                budget = int(record.assignment_values[REPLAY_RESOURCE])
                heapq.heappush(running, (now + budget, record.number, record))
            continue
        ended = ended or reply == []
        if not running:
            return events
        now, _, record = heapq.heappop(running)
        values = record.assignment_values
        history = histories[tuple(values[p["name"]] for p in parameters)]
        budget = int(values[REPLAY_RESOURCE])
        record.state, record.objective_value = SUCCEEDED, max(history[:budget])
        events.append(Event(budget + final_steps, record.objective_value))


def _replay_experiment(parameters: Sequence[dict]) -> dict:
    """The smallest Experiment around ``parameters`` that the local backend reads (never run)."""
    container = {"name": "main", "command": ["true"]}
    return {"apiVersion": "kubeflow.org/v1beta1", "kind": "Experiment", "metadata": {"name": "replay"},
            "spec": {"objective": {"type": "maximize", "objectiveMetricName": "val_accuracy"},
                     "algorithm": {"algorithmName": "random"}, "parameters": list(parameters),
                     "trialTemplate": {"primaryContainerName": "main", "trialSpec": {
                         "apiVersion": "batch/v1", "kind": "Job",
                         "spec": {"template": {"spec": {"containers": [container]}}}}}}}


def parameters_from_histories(histories: Mapping[Key, Sequence[float]]) -> list[dict]:
    """Categorical parameters (one per key position) over the values a recorded grid's keys hold."""
    width = len(next(iter(histories)))
    return [{"name": f"p{i}", "parameterType": "categorical",
             "feasibleSpace": {"list": sorted({k[i] for k in histories})}} for i in range(width)]


def median_curve(curves: Sequence[Curve]) -> Curve:
    """Point-wise median of several runs' best-so-far, on the union of their x values."""
    xs = sorted({x for c in curves for x, _ in c})
    out = []
    for x in xs:
        values = []
        for c in curves:
            reached = [b for spent, b in c if spent <= x and b is not None]
            if reached:
                values.append(reached[-1])
        out.append((x, statistics.median(values) if len(values) == len(curves) else None))
    return out


def summarize_strategy(name: str, runs: Sequence[list[Event]], threshold: float, grid_epochs: int) -> dict:
    """Trial-epochs to reach the threshold (median over runs), as a share of the full grid's."""
    reached = [epochs_to_reach(best_so_far(r), threshold) for r in runs]
    hits = [r for r in reached if r is not None]
    budget = [sum(e.epochs for e in r) for r in runs]
    # A run that never reaches the threshold counts as needing more than its whole budget.
    median = statistics.median(r if r is not None else float("inf") for r in reached) if reached else None
    median = None if median in (None, float("inf")) else median
    return {
        "strategy": name,
        "runs": len(runs),
        "reached": len(hits),
        "epochs_to_reach_median": median,
        "epochs_to_reach_each": reached,
        "share_of_grid": None if median is None else median / grid_epochs,
        "budget_epochs_median": statistics.median(budget) if budget else None,
        "best_found_median": statistics.median([best_so_far(r)[-1][1] for r in runs if r]) if runs else None,
    }


def plot_curves(curves: Mapping[str, Curve], threshold: float, grid_best: float, path, title: str) -> None:
    """Best-so-far vs trial-epochs, one line per strategy, with the grid's best and the threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, curve in curves.items():
        points = [(x, 100 * y) for x, y in curve if y is not None]
        if points:
            xs, ys = zip(*points)
            ax.step(xs, ys, where="post", label=name)
    ax.axhline(100 * grid_best, color="black", lw=0.8, ls=":", label="full grid's best")
    ax.axhline(100 * threshold, color="grey", lw=0.8, ls="--", label="within 0.2 pp")
    ax.set_xlim(left=0)
    ax.set_xlabel("trial-epochs spent")
    ax.set_ylabel("best val_accuracy so far (%)")
    lows = [100 * y for c in curves.values() for _, y in c if y is not None]
    if lows:
        ax.set_ylim(max(min(lows), 100 * grid_best - 5), 100 * grid_best + 0.5)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")  # the path may be a temporary name without .png
    plt.close(fig)
