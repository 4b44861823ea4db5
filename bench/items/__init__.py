"""The benchmark's items, one module each, numbered as issue 7 numbers them.

Each item is ``item_*(ctx) -> dict`` and returns the shape of :func:`~bench.items.common.new_result`:
its settings, the measured numbers, a headline, the target and whether it was met, a table for the
Markdown report, notes, and the files it wrote. Sizes come from :data:`FULL_SIZES` /
:data:`QUICK_SIZES` (:mod:`bench.items.sizes`), overridable one by one.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.items.backends import item_backends
from bench.items.bf16 import item_bf16
from bench.items.common import Context, new_result
from bench.items.input_pipeline import item_pipeline
from bench.items.install import item_install
from bench.items.pipeline_overhead import item_pipeline_overhead
from bench.items.search_efficiency import item_search
from bench.items.search_pbt import item_search_pbt
from bench.items.sizes import FULL_SIZES, QUICK_SIZES
from bench.items.smoke_run import item_smoke_run
from bench.items.sweep_overhead import item_sweep_overhead
from bench.items.throughput import item_throughput

__all__ = ["FULL_SIZES", "ITEMS", "QUICK_SIZES", "Context", "new_result"]

ITEMS: dict[int, Callable[[Context], dict]] = {
    1: item_throughput, 2: item_bf16, 3: item_backends, 4: item_pipeline,
    5: item_search, 6: item_sweep_overhead, 7: item_pipeline_overhead, 8: item_install, 9: item_smoke_run,
    10: item_search_pbt,
}
