"""The HTML of :mod:`switchnas.pipeline.report`: one self-contained page (inline CSS, figures
as inline SVG, no script, no external resource), and the small helpers that build it.

Everything interpolated into the page goes through :func:`html.escape`; figures are
matplotlib figures serialised to SVG without their XML prologue, DOCTYPE or RDF metadata,
so the page loads nothing from anywhere.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["CSS", "figure", "missing", "page", "problem", "section", "svg", "table"]

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       margin: 0 auto; max-width: 1100px; padding: 1.5em; color: #1c1c1c; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em;
     margin-top: 2em; }
h3 { font-size: 1.05em; margin-bottom: 0.3em; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right;
         vertical-align: top; }
th { background: #f3f3f3; }
td.l, th.l { text-align: left; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 0.85em;
      white-space: pre-wrap; }
.row { display: flex; flex-wrap: wrap; gap: 1.5em; }
.row > div { flex: 0 1 480px; }
figure { margin: 0.5em 0 1em; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.88em; color: #555; }
.missing { color: #7a5b00; background: #fff8e1; padding: 0.4em 0.7em;
           border-left: 3px solid #e0b000; }
.problem { color: #8a1c1c; background: #fdecea; padding: 0.4em 0.7em;
           border-left: 3px solid #c62828; }
.warn { color: #8a1c1c; }
.muted { color: #666; }
details summary { cursor: pointer; }
"""

_ID = re.compile(r"[^a-z0-9-]+")


def esc(value: Any) -> str:
    """``value`` as text safe inside HTML elements and quoted attributes."""
    return html.escape(str(value), quote=True)


def anchor(title: str) -> str:
    """The ``id`` a section titled ``title`` gets."""
    return _ID.sub("-", title.lower()).strip("-")


def page(title: str, sections: Sequence[tuple[str, str]], *, subtitle: str = "") -> str:
    """The whole document.

    Args:
        title: the page's title (plain text).
        sections: ``(title, body HTML)`` in order; each becomes an ``<section>`` with an
            ``<h2>`` and an ``id`` (:func:`anchor`) listed in the navigation bar.
        subtitle: a line of plain text under the title.

    Returns:
        The HTML document as a string.
    """
    nav = " ".join(f'<a href="#{anchor(t)}">{esc(t)}</a>' for t, _ in sections)
    body = "\n".join(f'<section id="{anchor(t)}">\n<h2>{esc(t)}</h2>\n{b}\n</section>'
                     for t, b in sections)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f"<h1>{esc(title)}</h1>\n<p class=\"muted\">{esc(subtitle)}</p>\n"
            f"<nav>{nav}</nav>\n{body}\n</body>\n</html>\n")


def section(*parts: str) -> str:
    """Join body parts of a section."""
    return "\n".join(p for p in parts if p)


def missing(reason: str) -> str:
    """The note of a section whose artefacts a run does not have."""
    return f'<p class="missing">not run: {esc(reason)}</p>'


def problem(reason: str) -> str:
    """The note of a section that could not be drawn (an unreadable artefact, say)."""
    return f'<p class="problem">could not be drawn: {esc(reason)}</p>'


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], *,
          left: Sequence[int] = (0,), raw: Sequence[int] = ()) -> str:
    """An HTML table.

    Args:
        header: column titles.
        rows: cell values; ``None`` shows as an en dash, floats with 4 significant digits.
        left: indices of left-aligned columns.
        raw: indices of columns whose cells are already HTML (not escaped).
    """
    def cell(i: int, v: Any) -> str:
        cls = ' class="l"' if i in left else ""
        text = v if i in raw else esc(fmt(v))
        return f"<td{cls}>{text}</td>"

    lcls = ' class="l"'
    head = "".join(f"<th{lcls if i in left else ''}>{esc(h)}</th>"
                   for i, h in enumerate(header))
    body = "\n".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(r)) + "</tr>"
                     for r in rows)
    return f"<table>\n<tr>{head}</tr>\n{body}\n</table>"


def fmt(v: Any) -> str:
    """A value as table text (floats to 4 significant digits, ``None`` as an en dash)."""
    if v is None:
        return "\u2013"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def svg(fig: Any) -> str:
    """A matplotlib ``Figure`` as inline SVG markup.

    The XML prologue, DOCTYPE, namespace declarations and metadata block are dropped: the
    markup names no URL at all.
    """
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None,
                                             "Format": None, "Type": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    # HTML parses inline SVG (and its xlink:href) without namespace declarations
    text = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", text, count=2)
    return re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)


def figure(fig: Any, caption: str) -> str:
    """A figure with its caption (plain text)."""
    return f"<figure>\n{svg(fig)}\n<figcaption>{esc(caption)}</figcaption>\n</figure>"
