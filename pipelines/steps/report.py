from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Model, Output

from pipelines.steps.common import COMPONENT_DEFAULTS


@dsl.component(**COMPONENT_DEFAULTS)
def build_report(dataset: Input[Dataset], model: Input[Model], evaluation: Input[Artifact],
                 report: Output[Artifact], markdown: Output[Markdown], html: Output[HTML]):
    """The study report: a folder (Markdown + figures), plus Markdown and HTML for the KFP UI."""
    import shutil

    from components.report import dataset_section, seed_cnn_section, write_report

    paths = write_report([dataset_section(dataset.path), seed_cnn_section(model.path, evaluation.path)],
                         report.path)
    shutil.copyfile(paths["markdown"], markdown.path)
    shutil.copyfile(paths["html"], html.path)
