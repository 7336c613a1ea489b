"""What commands write: the output-folder rule (:mod:`.folder`: one command and one set of
settings per folder, claimed, resumed, refused or overwritten), provenance, report documents
(Markdown and self-contained HTML) and figure helpers. Uses only :mod:`beadseg.core`.
"""
