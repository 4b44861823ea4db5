from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Model, Output

from pipelines.steps.common import COMPONENT_DEFAULTS


@dsl.component(**COMPONENT_DEFAULTS)
def train_cnn(dataset: Input[Dataset], model: Output[Model], metrics: Output[Metrics],
              optimizer: str = "Adam", learning_rate: float = 0.0,
              activations: str = "relu,relu,relu,relu", filters: str = "32,32,64,64",
              epochs: int = 10, batch_size: int = 128, seed: int = 1):
    """One run of the hand-written CNN (learning_rate 0 means the optimizer's default)."""
    from components.hparams import TrialConfig
    from components.train import run_trial

    config = TrialConfig(optimizer=optimizer, learning_rate=learning_rate or None,
                         activations=tuple(activations.split(",")),
                         filters=tuple(int(f) for f in filters.split(",")),
                         epochs=epochs, batch_size=batch_size, seed=seed)
    result = run_trial(config, dataset.path, model.path)
    for name, value in result["final"].items():
        metrics.log_metric(name, value)
    metrics.log_metric("train_images_per_second", result["train_images_per_second"])
    model.metadata.update({"params": result["params"]["total"], **result["config"]})
