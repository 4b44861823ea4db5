"""The resumable training loop on a tiny Keras model: record, resume, identity check, NaN, completion."""

import json

import keras
import numpy as np
import pytest

from components.core.errors import TrialDiverged, UserError
from components.core.training import EpochEnd, RunIdentity, TrainingRun, compile_built

METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def tiny_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(64, 4)).astype("float32")
    return x, (x[:, 0] > 0).astype("int32")


def tiny_model(optimizer=None) -> keras.Model:
    inputs = keras.Input((4,))
    x = keras.layers.Dense(8, activation="relu")(inputs)
    x = keras.layers.Dropout(0.5, seed=3)(x)  # a seed generator: its state must survive a resume
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    model.compile(optimizer=optimizer or keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def make_run(out, settings=None, epochs=3) -> TrainingRun:
    identity = RunIdentity("test run", "config", settings or {"units": 8, "epochs": epochs}, may_change=("epochs",),
                           data="abc", epochs=epochs)
    return TrainingRun(str(out), identity, metric_names=METRICS, phases=("train",),
                       divergence=lambda loss, epoch, phase: f"loss is {loss} at epoch {epoch} ({phase})")


def train(run: TrainingRun, until: int, x, y, seen: list | None = None, optimizer=None) -> keras.Model:
    keras.utils.set_random_seed(1)
    model = run.resume() or tiny_model(optimizer)

    def fit(first, last, callbacks):
        model.fit(x, y, validation_data=(x, y), initial_epoch=first, epochs=last, batch_size=16, shuffle=False,
                  verbose=0, callbacks=callbacks)

    run.train(model, "train", until, len(x), fit, (seen if seen is not None else []).append)
    return model


def test_identity_names_each_difference_and_a_longer_record():
    identity = RunIdentity("trial", "config", {"optimizer": "Nadam", "epochs": 2}, may_change=("epochs",),
                           data="new", epochs=2)
    assert identity.record() == {"config": {"optimizer": "Nadam", "epochs": 2}, "data": "new"}
    identity.check("out", {"config": {"optimizer": "Nadam", "epochs": 1}, "data": "new"}, 1, finished=False)
    with pytest.raises(UserError, match=r"^out: holds a finished trial with other settings: optimizer Adam "
                                        r"\(asked: Nadam\), data \(another dataset artifact\); use a new output"):
        identity.check("out", {"config": {"optimizer": "Adam", "epochs": 2}, "data": "old"}, 2, finished=True)
    with pytest.raises(UserError, match="holds a trial checkpoint of 3 epochs, more than epochs=2"):
        identity.check("out", {"config": {"optimizer": "Nadam", "epochs": 3}}, 3, finished=False)


def test_a_run_stopped_after_an_epoch_resumes_and_records_what_an_uninterrupted_one_does(tmp_path):
    x, y = tiny_data()
    whole = make_run(tmp_path / "whole")
    seen = []
    train(whole, 3, x, y, seen)
    assert [(end.phase, end.epoch, end.images) for end in seen] == [("train", 1, 64), ("train", 2, 64),
                                                                    ("train", 3, 64)]
    assert isinstance(seen[0], EpochEnd) and set(METRICS) <= set(seen[0].logs)

    first = make_run(tmp_path / "resumed")
    train(first, 1, x, y)  # then "killed": only the checkpoint is left
    state = json.loads((tmp_path / "resumed" / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == 1 and state["config"] == {"units": 8, "epochs": 3} and state["data"] == "abc"
    assert state["format"] == 2
    assert len(state["rng_states"]) == 1  # the Dropout's seed generator
    again = make_run(tmp_path / "resumed")
    train(again, 3, x, y)
    assert again.progress.epoch == 3 and len(again.progress.epoch_seconds) == 3
    assert again.progress.images == {"train": 3 * 64}
    for name in METRICS:
        assert again.progress.history["train"][name] == pytest.approx(whole.progress.history["train"][name],
                                                                      rel=1e-5), name


def test_completion_writes_metrics_last_and_a_finished_run_is_checked(tmp_path):
    x, y = tiny_data()
    run = make_run(tmp_path / "run", epochs=1)
    assert run.finished() is None
    train(run, 1, x, y)
    run.complete({"epochs": 1, "config": {"units": 8, "epochs": 1}, "data": "abc"}, run.progress.history["train"])
    assert json.loads((tmp_path / "run" / "history.json").read_text()) == run.progress.history["train"]
    assert make_run(tmp_path / "run", epochs=1).finished()["epochs"] == 1
    with pytest.raises(UserError, match="holds a finished test run with other settings: units 8 .asked: 16."):
        make_run(tmp_path / "run", settings={"units": 16, "epochs": 1}, epochs=1).finished()


def test_a_diverged_loss_stops_the_run_with_the_callers_message_and_no_checkpoint(tmp_path):
    x, y = tiny_data()
    run = make_run(tmp_path / "nan")
    with pytest.raises(TrialDiverged, match=r"^loss is (nan|inf) at epoch 1 \(train\)$"):
        train(run, 2, x * 1e6, y, optimizer=keras.optimizers.SGD(1e12))
    assert not (tmp_path / "nan" / "checkpoint").exists()


def test_a_checkpoint_of_another_format_is_refused_not_misread(tmp_path):
    x, y = tiny_data()
    train(make_run(tmp_path / "old"), 1, x, y)
    state = tmp_path / "old" / "checkpoint" / "state.json"
    record = json.loads(state.read_text())
    del record["format"]  # as the two loops this one replaced wrote it
    state.write_text(json.dumps(record))
    with pytest.raises(UserError, match="holds a test run checkpoint of another format"):
        make_run(tmp_path / "old").resume()


def _traced_fit(compile_with, seed: int = 1):
    """Fit a tiny model for two epochs; count how often its train step was traced (a Python side effect)."""
    x, y = tiny_data()
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Dense(8)(inputs)))
    compile_with(model, optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    traces = []
    step = model.train_step
    model.train_step = lambda data: (traces.append(1), step(data))[1]
    history = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history
    return len(traces), history, [w.copy() for w in model.get_weights()]


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="tf.function's tracing is TensorFlow's")
def test_compile_built_traces_the_train_step_once_and_trains_the_same():
    plain_traces, plain_history, plain_weights = _traced_fit(lambda m, **kw: m.compile(**kw))
    built_traces, built_history, built_weights = _traced_fit(compile_built)
    # Keras builds an unbuilt optimizer, loss and metrics inside the first trace, and TensorFlow
    # traces a step that created variables again; compile_built builds them before the first step.
    assert plain_traces == 2
    assert built_traces == 1
    assert built_history == plain_history
    for built, plain in zip(built_weights, plain_weights, strict=True):
        np.testing.assert_array_equal(built, plain)
