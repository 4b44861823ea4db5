"""The benchmark's results file (JSON) and its Markdown table."""

from __future__ import annotations

from pathlib import Path

SCHEMA = 1
RESULT_KEYS = ("schema", "quick", "started_at", "finished_at", "machine", "sizes", "items")
ITEM_KEYS = ("id", "name", "title", "status", "settings", "results", "headline", "target", "table", "notes",
             "files", "seconds")


def md_escape(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def md_table(columns: list[str], rows: list[list]) -> str:
    if not columns:
        return ""
    lines = ["| " + " | ".join(md_escape(c) for c in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = list(row) + [""] * (len(columns) - len(row))
        lines.append("| " + " | ".join(md_escape(c) for c in cells[: len(columns)]) + " |")
    return "\n".join(lines)


def met_mark(met) -> str:
    return {True: "met", False: "**not met**", None: "–"}[met]


def machine_lines(machine: dict) -> list[str]:
    cpu = machine["cpu"]
    model = cpu["model"]
    if cpu.get("family"):
        model += f" (family {cpu['family']}, model {cpu['model_number']})"
    libs = ", ".join(f"{k} {v}" for k, v in sorted(machine.get("libraries", {}).items()))
    lines = [f"- CPU: {model}, {machine['cores']} cores usable, flags: {', '.join(cpu.get('flags') or []) or '–'}",
             f"- memory: {machine.get('memory_gib')} GiB; GPUs: {', '.join(machine.get('gpus') or []) or 'none'}",
             f"- Python {machine['python']} on {machine['platform']}",
             f"- libraries: {libs}",
             f"- source: commit {machine.get('commit') or 'unknown'}",
             f"- Keras backend (default): {machine.get('keras_backend_default')}"]
    return lines


def render_markdown(results: dict) -> str:
    out = [f"# Benchmark — {results['started_at'][:10]} on {results['machine']['cpu']['model']}", ""]
    if results.get("quick"):
        out += ["> **Quick run**: tiny sizes that check the harness end to end. These numbers are not results.", ""]
    out += machine_lines(results["machine"])
    out += [f"- started {results['started_at']}, finished {results.get('finished_at') or '(running)'}", ""]
    out += ["## Summary", ""]
    summary = [[item["id"], item["title"], item["headline"] or item["status"], item["target"]["text"],
                met_mark(item["target"]["met"]) if item["status"] == "ok" else item["status"]]
               for item in results["items"]]
    out += [md_table(["#", "item", "result", "target", ""], summary), ""]
    for item in results["items"]:
        out += [f"## {item['id']}. {item['title']}", ""]
        if item["status"] != "ok":
            out += [f"**{item['status']}**" + (f": {item['error']}" if item.get("error") else ""), ""]
        if item.get("settings"):
            out += ["Settings: " + "; ".join(f"{k} = {v}" for k, v in item["settings"].items()), ""]
        table = item.get("table") or {}
        if table.get("columns"):
            out += [md_table(table["columns"], table["rows"]), ""]
        if item.get("headline"):
            out += [f"**Result:** {item['headline']}. **Target:** {item['target']['text']} — "
                    f"{met_mark(item['target']['met'])}.", ""]
        for name, file in (item.get("files") or {}).items():
            if str(file).endswith(".png"):
                out += [f"![{name}]({file})", ""]
        out += [f"- {md_escape(n)}" for n in item.get("notes") or []]
        if item.get("seconds") is not None:
            out += [f"- item took {item['seconds']:.0f} s"]
        out += [""]
    return "\n".join(out).rstrip() + "\n"


def write_results(results: dict, out_dir: Path, stem: str) -> dict[str, Path]:
    """JSON and Markdown side by side, each written atomically."""
    from katib.backends.local.files import write_json_atomic, write_text_atomic

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{stem}.json", "markdown": out_dir / f"{stem}.md"}
    write_json_atomic(paths["json"], results)
    write_text_atomic(paths["markdown"], render_markdown(results))
    return paths
