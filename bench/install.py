"""Item 8 lives in :mod:`bench.items.install`; this name stays for tests/integration/test_install.py,
which another part of issue 14 owns, until its import names the new place."""

from bench.items.install import clean_install_environment

__all__ = ["clean_install_environment"]
