"""What every report.html must be to a reader at 100 % zoom: its figures there (embedded) and no
wider than the page's column (so the browser never shrinks their text), no Markdown left
literal (backticks, escapes, asterisks), and counts written as whole numbers."""

from __future__ import annotations

import base64
import re
import struct
from html.parser import HTMLParser
from pathlib import Path

from beadseg.outputs.document import COLUMN_PX

#: table columns that hold counts (beads, images, tiles, frames), by header
_COUNT_HEADER = re.compile(r"^(true |predicted )?(beads|objects|images|tiles|frames|count)(/tile)?$", re.I)


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.text: list[str] = []
        self.images: list[str] = []
        self.tables: list[list[list[str]]] = []
        self._skip = 0
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script"):
            self._skip += 1
        elif tag == "img":
            self.images.append(dict(attrs).get("src", ""))
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("style", "script"):
            self._skip -= 1
        elif tag in ("td", "th") and self._cell is not None and self.tables:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._skip:
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def check_report(path: Path, figures: int | None = None) -> str:
    """Assert that the report at ``path`` reads well (see the module docstring); returns its
    visible text. ``figures``: how many figures it must show."""
    page = _Page()
    page.feed(Path(path).read_text())
    text = " ".join(page.text)
    where = f"{path}"
    assert "figure not found" not in text, where
    if figures is not None:
        assert len(page.images) == figures, (where, len(page.images))
    for src in page.images:
        assert src.startswith("data:image/png;base64,"), (where, src[:40])
        width, height = png_size(base64.b64decode(src.split(",", 1)[1]))
        assert width <= COLUMN_PX, f"{where}: a figure {width} px wide is shrunk to the {COLUMN_PX}-px column"
    for mark in ("`", "\\", "**", "](", "]("):
        assert mark not in text, f"{where}: literal Markdown {mark!r} in {_around(text, mark)!r}"
    decimals = re.search(r"\b\d+\.\d+ (beads|images|tiles|frames)\b", text)
    assert decimals is None, f"{where}: a count with decimals: {_around(text, decimals.group())!r}"
    for table in page.tables:
        header, *rows = table
        for i, title in enumerate(header):
            if _COUNT_HEADER.search(title):
                cells = [r[i] for r in rows if len(r) > i and r[i] not in ("", "n/a")]
                bad = [c for c in cells if not re.fullmatch(r"[\d,]+( / [\d,]+)*", c)]
                assert not bad, f"{where}: column {title!r} holds counts that are not whole: {bad[:3]}"
    return text


def _around(text: str, mark: str, width: int = 60) -> str:
    i = text.find(mark)
    return text[max(0, i - width) : i + width]
