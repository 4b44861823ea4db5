"""``python -m bench.run``: run the benchmark items, write ``<date>-<machine>.json`` and ``.md``.

    python -m bench.run                         # every item, full sizes -> bench/results/
    python -m bench.run --only 1,3,6            # a selection
    python -m bench.run --quick                 # tiny sizes (checks the harness) -> runs/bench/results/
    python -m bench.run --set train_images=2560 --set variants=baseline,xla

Results are rewritten after every item, so an interrupted run keeps what it
measured. Sizes: :data:`bench.items.sizes.FULL_SIZES` (``--set NAME=VALUE``, YAML values).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from bench.items import FULL_SIZES, ITEMS, QUICK_SIZES, Context
from bench.machine import machine_info, machine_slug
from bench.report import SCHEMA, write_results

REPO = Path(__file__).resolve().parents[1]


def parse_only(text: str | None) -> list[int]:
    if not text:
        return sorted(ITEMS)
    try:
        chosen = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--only {text!r}: expected item numbers like 1,3,6") from None
    unknown = [i for i in chosen if i not in ITEMS]
    if unknown:
        raise argparse.ArgumentTypeError(f"--only: no item {unknown[0]} (items are {', '.join(map(str, ITEMS))})")
    return chosen


def apply_sets(sizes: dict, items: list[str]) -> dict:
    import yaml

    sizes = dict(sizes)
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or name not in sizes:
            raise argparse.ArgumentTypeError(f"--set {item!r}: expected NAME=VALUE with NAME one of "
                                             f"{', '.join(sorted(sizes))}")
        sizes[name] = yaml.safe_load(raw)
    return sizes


def results_stem(date: str, slug: str, quick: bool, only: list[int]) -> str:
    stem = f"{date}-{slug}"
    if only != sorted(ITEMS):
        stem += "-items-" + "-".join(map(str, only))
    return stem + ("-quick" if quick else "")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    p.add_argument("--only", default=None, help="comma-separated item numbers (default: all)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: seconds to minutes, not results")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override one size")
    p.add_argument("--out", default=None, help="results folder (default: bench/results, or runs/bench/results "
                                               "with --quick)")
    p.add_argument("--work", default=None, help="scratch folder: data, trial outputs, logs (default: runs/bench)")
    p.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"),
                   help="Keras backend of items 1, 2 and 4 (default: KERAS_BACKEND or tensorflow)")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        only = parse_only(args.only)
        sizes = apply_sets(QUICK_SIZES if args.quick else FULL_SIZES, args.set)
    except argparse.ArgumentTypeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    machine = machine_info()
    now = datetime.now(timezone.utc)
    stem = results_stem(now.strftime("%Y-%m-%d"), machine_slug(machine), args.quick, only)
    out_dir = Path(args.out or (REPO / ("runs/bench/results" if args.quick else "bench/results")))
    work = Path(args.work or REPO / "runs" / "bench").resolve()
    work.mkdir(parents=True, exist_ok=True)

    def log(line: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {line}", flush=True)

    ctx = Context(sizes=sizes, work=work, out_dir=out_dir, stem=stem, backend=args.backend, quick=args.quick, log=log)
    results = {"schema": SCHEMA, "quick": args.quick, "started_at": now.isoformat(timespec="seconds"),
               "finished_at": None, "machine": machine, "sizes": sizes, "items": []}
    failed = 0
    for number in only:
        log(f"item {number}: {ITEMS[number].__name__}")
        started = time.perf_counter()
        try:
            item = ITEMS[number](ctx)
        except Exception as err:  # noqa: BLE001 - one item failing must not lose the others
            traceback.print_exc()
            item = {"id": number, "name": ITEMS[number].__name__.removeprefix("item_"), "title": ITEMS[number].__name__,
                    "status": "failed", "error": f"{type(err).__name__}: {err}", "settings": {}, "results": {},
                    "headline": "", "target": {"text": "", "met": None}, "table": {"columns": [], "rows": []},
                    "notes": [], "files": {}}
        item["seconds"] = time.perf_counter() - started
        failed += item["status"] != "ok"
        results["items"].append(item)
        paths = write_results(results, out_dir, stem)
        log(f"item {number}: {item['status']} — {item.get('headline') or item.get('error', '')}")
    results["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    paths = write_results(results, out_dir, stem)
    log(f"results: {paths['json']} and {paths['markdown']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
