"""Run profiles (``profiles.yaml``) with ``section.key=value`` overrides from the command line."""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

import yaml

from components.core.errors import UserError

PROFILES_FILE = Path(__file__).with_name("profiles.yaml")
DEFAULT_PROFILE = "smoke"


@lru_cache(maxsize=1)
def _all_profiles() -> dict:
    return yaml.safe_load(PROFILES_FILE.read_text())


def profile_names() -> list[str]:
    return list(_all_profiles())


def apply_override(profile: dict, override: str) -> None:
    """Apply ``section.key=value`` (value parsed as YAML: 3, 0.5, null, [a, b]) in place."""
    key, sep, raw = override.partition("=")
    path = key.strip().split(".")
    if not sep or len(path) < 2 or not all(path):
        raise UserError(f"--set {override!r}: expected SECTION.KEY=VALUE, e.g. train.epochs=3")
    node = profile
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            raise UserError(f"--set {override!r}: no section {part!r} (sections: "
                            f"{', '.join(k for k, v in profile.items() if isinstance(v, dict))})")
        node = node[part]
    if path[-1] not in node:
        raise UserError(f"--set {override!r}: no setting {path[-1]!r} in {'.'.join(path[:-1])} "
                        f"(settings: {', '.join(node)})")
    try:
        node[path[-1]] = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise UserError(f"--set {override!r}: value is not valid YAML") from None


def read_profile(name: str = DEFAULT_PROFILE, overrides: list[str] | tuple = ()) -> dict:
    """The profile with its overrides applied, not yet checked: ``components.profile_check.load_profile``
    checks the whole of it (it knows every step's settings, which this bottom layer must not import)."""
    profiles = _all_profiles()
    if name not in profiles:
        raise UserError(f"profile {name!r}: expected one of {', '.join(profiles)}")
    profile = copy.deepcopy(profiles[name])
    for override in overrides:
        apply_override(profile, override)
    profile["name"] = name
    return profile
