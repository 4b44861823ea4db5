"""The study's sweeps, for importers that still look for them here.

The definitions live in :mod:`components.sweeps` (the report, below ``katib``, reads them too);
new code imports them from there.
"""

from components.sweeps import (  # noqa: F401 - re-exported
    ACTIVATION_SWEEP,
    FILTER_CHOICES,
    FILTER_SWEEP,
    OPTIMIZER_SWEEP,
    SWEEPS,
    Parameter,
    Sweep,
    get_sweep,
    start_settings,
)

# The three sweeps' start values, as bench/items.py reads them.
BASE_SETTINGS = start_settings()
