"""The names of what a search writes: its output (``nas.json`` last) and its search folder.

Stated once here because the tuner writes some of them, the export others, and the run
reads both; the report reads ``nas.json`` by name.
"""

# In the output.
MODEL_FILE = "model.keras"
MODEL_SUMMARY_FILE = "model_summary.txt"
TRIALS_FILE = "trials.csv"
RESULT_FILE = "nas.json"  # written last

# In the search folder.
SEARCH_FOLDER = "search"  # default search location inside the output
PROJECT = "autokeras"  # the KerasTuner project folder inside the search folder
SETTINGS_FILE = "settings.json"  # what a resumed search must match
PROGRESS_FILE = "progress.json"  # wall time of each attempt
TRIAL_RUN_FILE = "run.json"  # in each trial folder: which worker ran it, for how long
