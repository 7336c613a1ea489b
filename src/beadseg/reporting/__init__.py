"""Reports people read: one Markdown text per report, written as ``report.md`` and as a
self-contained ``report.html`` (figures embedded, tables, a Terms section defining every term
once).

- :mod:`~beadseg.reporting.document`: Markdown -> HTML, tables, the Terms section, writing both;
- :mod:`~beadseg.reporting.evaluation`: the content of `beadseg evaluate`'s report.
"""

from .document import (
    escape,
    markdown_table,
    render_html,
    report_markdown,
    write_report,
)

__all__ = ["escape", "markdown_table", "render_html", "report_markdown", "write_report"]
