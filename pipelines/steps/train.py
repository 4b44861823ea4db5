from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from pipelines.steps.common import COMPONENT_DEFAULTS


@dsl.component(**COMPONENT_DEFAULTS)
def train_cnn(dataset: Input[Dataset], model: Output[Model], metrics: Output[Metrics],
              optimizer: str = "Adam", learning_rate: float = 0.0,
              activations: str = "relu,relu,relu,relu", filters: str = "32,32,64,64",
              epochs: int = 10, batch_size: int = 128, seed: int = 1, bn_momentum: float = 0.99,
              train_images: int = 0, work_root: str = "", run_id: str = "", task_name: str = ""):
    """One run of the hand-written CNN (learning_rate 0 means the optimizer's default, train_images 0 all images).

    With work_root, run_id and task_name it trains in work_root/run_id/task_name/model, where its
    checkpoint survives a retry of this task, and copies the finished model into the artifact.
    """
    from components.core.keras_load import load_keras

    load_keras()  # without the optional packages a trial never uses: a faster start
    from components.cnn.hparams import TrialConfig
    from components.cnn.train import run_trial
    from components.core import storage
    from katib.access import work_uri

    config = TrialConfig(optimizer=optimizer, learning_rate=learning_rate or None,
                         activations=tuple(activations.split(",")),
                         filters=tuple(int(f) for f in filters.split(",")),
                         epochs=epochs, batch_size=batch_size, seed=seed, bn_momentum=bn_momentum,
                         train_images=train_images or None)
    durable = work_uri(work_root, run_id, task_name, "model")
    result = run_trial(config, dataset.path, durable or model.path)
    if durable:
        storage.download_dir(durable, model.path)
    for name, value in result["final"].items():
        metrics.log_metric(name, value)
    metrics.log_metric("train_images_per_second", result["train_images_per_second"])
    model.metadata.update({"params": result["params"]["total"], **result["config"]})
