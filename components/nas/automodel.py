"""The study's AutoModel, built for a search (:func:`build_auto_model`), or previewed: the model
the first trial would train, built without training (:func:`preview_first_trial`).

``pretrained`` is fixed before the space is explored, False unless asked for, so no step
downloads ImageNet weights.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path

from components.core.settings import OBJECTIVE_METRIC
from components.nas.arrays import search_arrays
from components.nas.config import NasConfig, check_tuner_available
from components.nas.layout import PROJECT
from components.nas.tuner import tuner_class

# Inside an ImageBlock, the block that wraps a Keras application and owns the `pretrained`
# hyperparameter. Block names count from 1 in every AutoModel (it clears the Keras session).
_APPLICATION_BLOCKS = {"resnet": "res_net_block_1", "xception": "xception_block_1",
                       "efficient": "efficient_net_block_1"}


def build_auto_model(config: NasConfig, directory: str | Path, log: Callable[[str], None] = print,
                     after_trial: Callable[[str], None] = lambda trial_id: None):
    """The study's AutoModel: ImageInput → ImageBlock(block_type, normalize, augment) → ClassificationHead."""
    import autokeras as ak
    import keras_tuner

    image = ak.ImageInput()
    block = ak.ImageBlock(block_type=config.block_type, normalize=config.normalize, augment=config.augment)
    head = ak.ClassificationHead()
    output = head(block(image))
    # Fix `pretrained` before the space is explored, so no trial can turn it on (and download).
    hyperparameters = keras_tuner.HyperParameters()
    if config.block_type in _APPLICATION_BLOCKS:
        hyperparameters.Fixed(f"{block.name}/{_APPLICATION_BLOCKS[config.block_type]}/pretrained",
                              config.pretrained)
    extra = {"max_epochs": config.epochs} if config.tuner == "hyperband" else {}
    return ak.AutoModel(
        inputs=image, outputs=output, project_name=PROJECT, directory=str(directory),
        max_trials=config.max_trials, objective=OBJECTIVE_METRIC, seed=config.seed, overwrite=False,
        tuner=tuner_class(config.tuner, log, after_trial, config.pretrained),
        hyperparameters=hyperparameters, tune_new_entries=True, **extra)


def preview_first_trial(config: NasConfig, data_uri: str, sample: int = 1000):
    """Build (without training) the model the search's first trial trains; return ``(model, values)``.

    Runs AutoKeras' own preparation on a sample of the training images in a throwaway
    folder, asks the oracle for trial 0 and builds it: the parameter counts of a
    ResNet search can be checked in seconds instead of hours.
    """
    from components.core.dataset import load_dataset

    config = config.normalized()
    check_tuner_available(config.tuner)
    data = load_dataset(data_uri)
    x_train, y_train, x_val, y_val = search_arrays(
        data, dataclasses.replace(config, train_images=min(sample, len(data.y["train"])), val_split=None))
    set_seed(config.seed)
    with tempfile.TemporaryDirectory(prefix="study-nas-preview-") as tmp:
        auto_model = build_auto_model(config, tmp, log=lambda line: None)
        # The steps of AutoModel.fit and AutoTuner.search that come before the first trial.
        dataset, validation = auto_model._check_and_adapt(x=x_train, y=y_train, validation_data=(x_val, y_val))
        auto_model._analyze_data(dataset)
        auto_model._build_hyper_pipeline()
        tuner = auto_model.tuner
        hp = tuner.oracle.get_space()
        tuner._prepare_model_build(hp, x=dataset[0], y=dataset[1], validation_data=validation)
        tuner._try_build(hp)
        tuner.oracle.update_space(hp)
        tuner.oracle.verbose = 0  # no trial table on stdout
        trial = tuner.oracle.create_trial("preview")
        return tuner._try_build(trial.hyperparameters), dict(trial.hyperparameters.values)


def set_seed(seed: int) -> None:
    """Keras' random seed (Python, numpy and the backend), set before the tuner builds a model."""
    import keras

    keras.utils.set_random_seed(seed)
