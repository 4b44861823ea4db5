"""Question 1B: the AutoKeras architecture search (image input → ImageBlock → classification head).

An AutoKeras 3 ``AutoModel`` fed numpy arrays from the dataset artifact, resumable on the same
output, run alone or as KerasTuner's chief or a worker. One job per module:

- ``config``     the settings (:class:`NasConfig`) and their checks
- ``roles``      single, chief or worker, from KerasTuner's ``KERASTUNER_*`` variables
- ``arrays``     the dataset's splits as the arrays AutoKeras takes
- ``tuner``      the study's tuner mixin and the atomic-state patch of KerasTuner's ``save_json``
- ``automodel``  the study's AutoModel, and a preview of the first trial's model
- ``search``     the run: start, resume or join a search, then export
- ``export``     the output (``model.keras``, ``model_summary.txt``, ``trials.csv``, ``nas.json`` last)
- ``layout``     the names of the files in the output and the search folder
- ``cli``        ``study nas``
"""

from components.nas.automodel import build_auto_model, preview_first_trial
from components.nas.cli import add_arguments, config_from_args, run_from_args
from components.nas.config import BLOCK_TYPES, TUNERS, NasConfig, check_tuner_available
from components.nas.export import describe_model, load_best_model, model_summary_text, trial_records, trials_csv
from components.nas.layout import MODEL_FILE, MODEL_SUMMARY_FILE, RESULT_FILE, SEARCH_FOLDER, TRIALS_FILE
from components.nas.roles import ENV_ORACLE_IP, ENV_ORACLE_PORT, ENV_TUNER_ID, Role, search_role
from components.nas.search import run_nas

__all__ = [
    "BLOCK_TYPES", "ENV_ORACLE_IP", "ENV_ORACLE_PORT", "ENV_TUNER_ID", "MODEL_FILE", "MODEL_SUMMARY_FILE",
    "RESULT_FILE", "SEARCH_FOLDER", "TRIALS_FILE", "TUNERS", "NasConfig", "Role", "add_arguments",
    "build_auto_model", "check_tuner_available", "config_from_args", "describe_model", "load_best_model",
    "model_summary_text", "preview_first_trial", "run_from_args", "run_nas", "search_role", "trial_records",
    "trials_csv",
]
