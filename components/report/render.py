"""The report rendered: Markdown for people and repositories, one self-contained HTML page for the KFP UI."""

from __future__ import annotations

import base64
import html

from components.core import storage
from components.report.section import Section


def section_markdown(section: Section, figure_src: dict[str, str] | None = None) -> str:
    """One section's body in Markdown (no heading); ``figure_src`` maps a figure to another link."""
    lines = []
    if section.intro:
        lines += [section.intro, ""]
    if section.table:
        header, *rows = section.table
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        lines.append("")
    lines += [f"![{name}]({(figure_src or {}).get(name, name)})" for name in section.figures]
    if section.figures:
        lines.append("")
    return "\n".join(lines)


def render_markdown(title: str, sections: list[Section]) -> str:
    lines = [f"# {title}", ""]
    for s in sections:
        lines += [f"## {s.title}", "", section_markdown(s)]
    return "\n".join(lines)


def anchor(title: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in title.lower()).split())


STYLE = """
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;max-width:60em;
margin:2em auto;padding:0 1em}
h1{font-size:1.8em;border-bottom:1px solid #d0d7de;padding-bottom:.3em}
h2{font-size:1.35em;margin-top:2em;border-bottom:1px solid #eaeef2;padding-bottom:.2em}
nav{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.6em 1.2em;display:inline-block}
nav ol{margin:.3em 0;padding-left:1.4em}
table{border-collapse:collapse;margin:1em 0;font-variant-numeric:tabular-nums}
td,th{border:1px solid #d0d7de;padding:.3em .7em;text-align:right}
th{background:#f6f8fa}
td:first-child,th:first-child{text-align:left}
tr:nth-child(even) td{background:#fafbfc}
img{max-width:100%;height:auto;display:block;margin:1em 0}
code{background:#f6f8fa;padding:.1em .3em;border-radius:4px;font-size:90%}
"""


def render_html(title: str, sections: list[Section]) -> str:
    """One self-contained page: the Markdown rendered by markdown-it-py, a table of contents, figures inlined."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    toc = "".join(f"<li><a href='#{anchor(s.title)}'>{html.escape(s.title)}</a></li>" for s in sections)
    out = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
           f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{html.escape(title)}</title>"
           f"<style>{STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
           f"<nav><strong>Contents</strong><ol>{toc}</ol></nav>"]
    for s in sections:
        inline = {name: "data:image/png;base64," + base64.b64encode(data).decode("ascii")
                  for name, data in s.figures.items()}
        out.append(f"<section id='{anchor(s.title)}'><h2>{html.escape(s.title)}</h2>")
        out.append(md.render(section_markdown(s, inline)))
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out)


def write_report(sections: list[Section], out_uri: str, title: str = "Fashion-MNIST study") -> dict[str, str]:
    """Write report.md (+ its figures) and report.html; the HTML, written last, marks completion."""
    storage.check_writable(out_uri)
    for s in sections:
        for name, data in s.figures.items():
            storage.write_bytes(storage.join(out_uri, name), data)
    md_uri, html_uri = storage.join(out_uri, "report.md"), storage.join(out_uri, "report.html")
    storage.write_text(md_uri, render_markdown(title, sections))
    storage.write_text(html_uri, render_html(title, sections))
    return {"markdown": md_uri, "html": html_uri}
