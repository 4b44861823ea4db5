from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Model, Output

from pipelines.steps.common import COMPONENT_DEFAULTS


@dsl.component(**COMPONENT_DEFAULTS)
def build_report(dataset: Input[Dataset], model: Input[Model], evaluation: Input[Artifact],
                 optimizer_sweep: Input[Artifact], activations_sweep: Input[Artifact], filters_sweep: Input[Artifact],
                 nas: Input[Model], mobilenet_transfer: Input[Model], inception_transfer: Input[Model],
                 report: Output[Artifact], markdown: Output[Markdown], html: Output[HTML]):
    """The study report: a folder (Markdown + figures), plus Markdown and HTML for the KFP UI.

    One input per sweep, named <sweep>_sweep (components/sweeps.py): the pipeline wires each sweep it has.
    """
    import shutil

    from components.report.document import study_sections
    from components.report.render import write_report

    sections = study_sections(
        dataset.path, model.path, evaluation.path, nas_uri=nas.path,
        sweep_uris={"optimizer": optimizer_sweep.path, "activations": activations_sweep.path,
                    "filters": filters_sweep.path},
        transfer_uris={"mobilenet_v2": mobilenet_transfer.path, "inception_v3": inception_transfer.path})
    paths = write_report(sections, report.path)
    shutil.copyfile(paths["markdown"], markdown.path)
    shutil.copyfile(paths["html"], html.path)
