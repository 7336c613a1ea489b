"""One report, two files: the Markdown text is written as ``report.md`` and rendered into a
self-contained ``report.html`` (inline CSS, figures embedded as base64), so the two can never say
different things.

Markdown is rendered by markdown-it-py (CommonMark plus tables; already installed with rich, and
imported only here: ~40 ms). Raw HTML in the text is escaped, not passed through, so a file name
cannot inject markup into a report.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

from ..core.files import write_text

#: image types a report may embed, by suffix
_MIME = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
}

#: the width of a report page's column in px (``main``: 1100 px less 2 x 2em of padding at 15 px,
#: less an image's 1-px borders): a figure no wider is shown at its own size, at 100 % zoom
COLUMN_PX = 1036

_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2330;
       background: #fff; margin: 0; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5em 2em 3em; }
h1 { font-size: 1.7em; border-bottom: 3px solid #3b5bdb; padding-bottom: .25em; }
h2 { font-size: 1.3em; margin-top: 1.8em; border-bottom: 1px solid #d0d5e0; }
h3 { font-size: 1.1em; }
table { border-collapse: collapse; margin: .8em 0; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d5e0; padding: .3em .7em; }
th { background: #eef1f8; text-align: left; }
tbody tr:nth-child(even) { background: #f7f8fb; }
td { font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; border: 1px solid #d0d5e0; }
code { background: #eef1f8; padding: 0 .25em; border-radius: 3px; }
footer { color: #6b7385; font-size: .85em; border-top: 1px solid #d0d5e0; margin-top: 3em;
         padding-top: .5em; }
"""

# What Markdown would read as markup inside a line: emphasis, code, links, table cells. An "_"
# between letters or digits is literal in CommonMark (file names stay readable in report.md);
# "<" needs no escape, raw HTML is escaped at rendering.
_MD_SPECIAL = re.compile(r"([\\`*\[\]|])|((?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")


def escape(text: object) -> str:
    """``text`` as literal Markdown: characters Markdown would read as markup are escaped.

    Examples
    --------
    >>> print(escape("160x_r1_c2 | *dense* _x_"))
    160x_r1_c2 \\| \\*dense\\* \\_x\\_
    """
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(0), str(text))


def _cell(value: object, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return escape(value)


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[object]], digits: int = 3, align: str = ""
) -> str:
    """A Markdown table; floats get ``digits`` decimals, None/NaN read "n/a", text is escaped.

    Parameters
    ----------
    header : column titles (Markdown, not escaped)
    rows : one sequence of values per row
    align : str
        One letter per column, ``l`` or ``r`` (default: the first column left, the rest right).

    Examples
    --------
    >>> print(markdown_table(["image", "count"], [["a", 3], ["b", None]]))
    | image | count |
    |:---|---:|
    | a | 3 |
    | b | n/a |
    """
    if not align:
        align = "l" + "r" * (len(header) - 1)
    if len(align) != len(header) or set(align) - {"l", "r"}:
        raise ValueError(f"align {align!r} needs one of l/r per column ({len(header)} columns)")
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|",
    ]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"a row has {len(row)} values for {len(header)} columns: {row!r}")
        lines.append("| " + " | ".join(_cell(v, digits) for v in row) + " |")
    return "\n".join(lines)


def report_markdown(body: str, terms: Mapping[str, str]) -> str:
    """The whole report: ``body`` and a Terms section defining every term once, sorted."""
    out = body.rstrip() + "\n"
    if terms:
        out += "\n## Terms\n\n"
        out += "".join(
            f"- **{escape(name)}**: {escape(terms[name])}\n" for name in sorted(terms, key=str.lower)
        )
    return out


def _parser():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")


def _embed(src: str, base: Path) -> str | None:
    """A data URI of the figure ``src`` (relative to ``base``); None when it is not a local
    figure file."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", src, re.I):  # data:, http:, file: ... left alone
        return None
    path = base / src
    mime = _MIME.get(path.suffix.lower())
    if mime is None or not path.is_file():
        return None
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render_html(text: str, base: str | Path, generator: str = "beadseg") -> str:
    """Render the Markdown ``text`` as one self-contained HTML page.

    Parameters
    ----------
    text : str
        The report in Markdown; its first level-1 heading is the page title.
    base : path
        Folder that relative figure paths are read from; each figure is embedded as a base64
        data URI (its path kept as the image title). A figure that is missing is not an error:
        its alt text and path are shown instead.
    generator : str
        Named in the footer with the time of writing.

    Returns
    -------
    str
        ``<!doctype html>`` page with inline CSS and no external resources.
    """
    base = Path(base)
    md = _parser()
    tokens = md.parse(text)
    title = "report"
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.tag == "h1":
            title = tokens[i + 1].content
            break
    for tok in tokens:
        for child in tok.children or []:
            if child.type != "image":
                continue
            src = str(child.attrs.get("src", ""))
            uri = _embed(src, base)
            child.attrs.setdefault("title", src)
            if uri is None:
                child.type, child.tag, child.attrs = "text", "", {}
                child.content = f"[figure not found: {src}]"
            else:
                child.attrs["src"] = uri
    body = md.renderer.render(tokens, md.options, {})
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!doctype html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        f"{body}<footer>Written by {html.escape(generator)}, {stamp}.</footer>\n"
        "</main>\n</body>\n</html>\n"
    )


def write_report(
    folder: str | Path, body: str, terms: Mapping[str, str], name: str = "report"
) -> tuple[Path, Path]:
    """Write ``NAME.md`` and the self-contained ``NAME.html`` into ``folder``, both atomically.

    Figures the Markdown links (relative to ``folder``) must be written before this call, so the
    HTML can embed them.

    Returns
    -------
    (Path, Path)
        The Markdown and the HTML file.
    """
    from .. import __version__

    folder = Path(folder)
    text = report_markdown(body, terms)
    md_path = write_text(folder / f"{name}.md", text)
    html_path = write_text(folder / f"{name}.html", render_html(text, folder, f"beadseg {__version__}"))
    return md_path, html_path
