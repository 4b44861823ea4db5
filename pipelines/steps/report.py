from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Markdown, Model, Output

from pipelines.steps.common import COMPONENT_DEFAULTS


@dsl.component(**COMPONENT_DEFAULTS)
def build_report(dataset: Input[Dataset], model: Input[Model], evaluation: Input[Artifact],
                 optimizer_sweep: Input[Artifact], activations_sweep: Input[Artifact], filters_sweep: Input[Artifact],
                 nas: Input[Model], transfers: Input[list[Model]],
                 report: Output[Artifact], markdown: Output[Markdown], html: Output[HTML]):
    """The study report: a folder (Markdown + figures), plus Markdown and HTML for the KFP UI.

    One input per sweep, named <sweep>_sweep (components/sweeps.py): the pipeline wires each sweep it has.
    ``transfers``: the transfer loop's run folders, one per base, collected (``dsl.Collected``).
    """
    import shutil

    from components.report.document import study_sections
    from components.report.render import write_report
    from components.report.transfer_section import transfer_runs

    sections = study_sections(
        dataset.path, model.path, evaluation.path, nas_uri=nas.path,
        sweep_uris={"optimizer": optimizer_sweep.path, "activations": activations_sweep.path,
                    "filters": filters_sweep.path},
        transfer_uris=transfer_runs([run.path for run in transfers]))
    paths = write_report(sections, report.path)
    shutil.copyfile(paths["markdown"], markdown.path)
    shutil.copyfile(paths["html"], html.path)
