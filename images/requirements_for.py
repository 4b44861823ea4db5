"""The lines of requirements.lock that an image variant installs, on stdout.

    python3 images/requirements_for.py cpu|gpu < requirements.lock

The gpu variant's base image brings its own CUDA TensorFlow; installing any TensorFlow
distribution from the lock would put a CPU build over it. Names are compared normalized
(PEP 503), since the lock may spell a name with '-', '_' or '.'. Standard library only:
it runs in the image build with the base image's Python.
"""

from __future__ import annotations

import re
import sys

TENSORFLOW_DISTRIBUTIONS = frozenset({
    "tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-intel", "tensorflow-macos",
    "tensorflow-cpu-aws", "tf-nightly", "tf-nightly-cpu",
})
EXCLUDED = {"cpu": frozenset(), "gpu": TENSORFLOW_DISTRIBUTIONS}


def normalized(name: str) -> str:
    """PEP 503's normalized form of a distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str | None:
    """The distribution a requirement line names, or None for a comment, option or blank line."""
    text = line.split("#", 1)[0].strip()
    if not text or text.startswith("-"):
        return None
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", text)
    return normalized(match.group(0)) if match else None


def lines_for(variant: str, lines: list[str]) -> list[str]:
    excluded = EXCLUDED[variant]
    return [line for line in lines if requirement_name(line) not in excluded]


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in EXCLUDED:
        print(f"error: expected one variant argument, one of {', '.join(EXCLUDED)}", file=sys.stderr)
        return 2
    sys.stdout.writelines(lines_for(argv[0], sys.stdin.readlines()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
