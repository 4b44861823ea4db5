from kfp import dsl
from kfp.dsl import Dataset, Output

from pipelines.steps.common import COMPONENT_DEFAULTS


@dsl.component(**COMPONENT_DEFAULTS)
def prepare_data(dataset: Output[Dataset], source: str = "", val_fraction: float = 0.1,
                 train_size: int = 0, test_size: int = 0, seed: int = 42):
    """Fashion-MNIST, checked and split; sizes of 0 mean all images."""
    from components.data import DataSettings, prepare_dataset

    meta = prepare_dataset(DataSettings(source=source or None, val_fraction=val_fraction,
                                        train_size=train_size or None, test_size=test_size or None,
                                        seed=seed), dataset.path)
    dataset.metadata.update({"source": meta["source"], **meta["counts"]})
