"""Errors meant for people: one line, naming the value and what was expected.

Every CLI, KFP component and trial command catches :class:`UserError`, prints
its message on one line and exits with status 2 (see ``pipelines.cli``).
"""


class UserError(Exception):
    """Bad input: a value, file or location the user gave is not usable."""

    exit_code = 2


class TrialDiverged(Exception):
    """Training produced a NaN or infinite loss; the trial cannot continue."""

    exit_code = 3
