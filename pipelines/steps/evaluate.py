from kfp import dsl
from kfp.dsl import Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from pipelines.steps.common import COMPONENT_DEFAULTS


@dsl.component(**COMPONENT_DEFAULTS)
def evaluate_model(dataset: Input[Dataset], model: Input[Model], evaluation: Output[Artifact],
                   metrics: Output[Metrics], confusion: Output[ClassificationMetrics]):
    """Test accuracy and loss, per-class accuracy, confusion matrix and curves (PNG)."""
    from components.core.keras_load import load_keras

    load_keras()  # without the optional packages evaluation never uses: a faster start
    from components.evaluate import evaluate_model as evaluate

    result = evaluate(model.path, dataset.path, evaluation.path)
    metrics.log_metric("test_accuracy", result["test_accuracy"])
    metrics.log_metric("test_loss", result["test_loss"])
    metrics.log_metric("params", result["params"]["total"])
    confusion.log_confusion_matrix(result["class_names"], result["confusion_matrix"])
