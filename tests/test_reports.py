"""report.md and the self-contained report.html of analyze, evaluate and demo."""

import base64
import doctest
import json
import re

import numpy as np
import pytest
from browser import find_browser, screenshot
from optional import require

from beadseg.core.images import read_image, write_image
from beadseg.outputs.document import markdown_table, render_html, report_markdown, write_report


def _cells(html: str) -> list[str]:
    return re.findall(r"<td[^>]*>(.*?)</td>", html)


def test_markdown_table_formats_values_and_keeps_text_literal():
    md = markdown_table(["image", "F1", "count"], [["a|b *x* _y_", 0.91234, None], ["c", float("nan"), 7]])
    html = render_html("# t\n\n" + md, ".")
    assert _cells(html) == ["a|b *x* _y_", "0.912", "n/a", "c", "n/a", "7"]
    with pytest.raises(ValueError, match="2 values for 3 columns"):
        markdown_table(["a", "b", "c"], [[1, 2]])
    with pytest.raises(ValueError, match="align"):
        markdown_table(["a", "b"], [[1, 2]], align="lx")


def test_html_embeds_figures_escapes_markup_and_names_missing_figures(tmp_path):
    red = np.zeros((20, 30, 3), np.uint8)
    red[..., 0] = 255
    write_image(tmp_path / "figs" / "red.png", red)
    text = (
        "# Counts <b>of</b> beads\n\nText <script>alert(1)</script>.\n\n"
        "![a red block](figs/red.png)\n\n![gone](missing.png)\n"
    )
    html = render_html(text, tmp_path)
    assert "<title>Counts &lt;b&gt;of&lt;/b&gt; beads</title>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    srcs = re.findall(r'src="([^"]*)"', html)
    assert len(srcs) == 1 and srcs[0].startswith("data:image/png;base64,")
    png = base64.b64decode(srcs[0].split(",", 1)[1])
    assert png == (tmp_path / "figs" / "red.png").read_bytes()
    assert 'title="figs/red.png"' in html
    assert "[figure not found: missing.png]" in html
    assert "http" not in html.replace("http-equiv", "")  # nothing fetched from elsewhere


def test_terms_are_defined_once_in_alphabetical_order():
    md = report_markdown("# r\n\nbody", {"count error": "(p - t) / max(t, 1)", "Dice": "2|P and T|..."})
    terms = re.findall(r"^- \*\*(.+?)\*\*: ", md, re.M)
    assert terms == ["count error", "Dice"]
    assert md.count("## Terms") == 1


def test_docstring_examples_hold():
    import beadseg.outputs.document
    import beadseg.outputs.terms

    for module in (beadseg.outputs.document, beadseg.outputs.terms):
        assert doctest.testmod(module).failed == 0, module.__name__


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    """`evaluate` of the shipped model on a small synthetic set, written to a folder."""
    from beadseg.data.synth import synth_dataset
    from beadseg.evaluation.evaluate import evaluate

    root = tmp_path_factory.mktemp("ev")
    synth_dataset(root / "data", n=6, size=128, seed=1, min_beads=5, max_beads=400)
    result = evaluate("default", root / "data", root / "ev")
    return root / "ev", result


def test_evaluate_writes_the_same_report_as_markdown_and_html(evaluation):
    out, result = evaluation
    md, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    metrics = json.loads((out / "metrics.json").read_text())["overall"]
    c = metrics["centroid"]
    # the numbers of metrics.json, in both files
    row = (
        f"{c['precision']:.3f} / {c['recall']:.3f} / {c['f1']:.3f} (TP {c['tp']}, FP {c['fp']}, FN {c['fn']})"
    )
    assert row in md and row in html
    terms = re.findall(r"^- \*\*(.+?)\*\*: ", md, re.M)
    assert len(terms) == len(set(terms))
    for term in ("centroid F1", "shift-tolerant IoU", "count error", "pixel IoU", "Dice"):
        assert term in terms
        assert html.count(f"<strong>{term}</strong>:") == 1
    assert "![the worst images](worst_cases.png)" in md
    assert re.findall(r'src="([^"]{0,22})', html) == ["data:image/png;base64,"]
    worst = min(result.images, key=lambda e: (e.centroids.f1, e.image))
    if worst.centroids.f1 < 1:
        assert worst.image in md


def test_analyze_report_html_embeds_its_three_figures(tmp_path, synth_data):
    from beadseg.analysis import analyze_dataset

    analyze_dataset(synth_data, tmp_path / "an", workers=1)
    html = (tmp_path / "an" / "report.html").read_text()
    srcs = re.findall(r'src="([^"]{0,22})', html)
    assert srcs == ["data:image/png;base64,"] * 3
    for fig in ("distribution_analysis.png", "sample_images.png", "registration.png"):
        assert f'title="{fig}"' in html
    assert "<h2>Terms</h2>" in html and "<strong>source frame</strong>" in html


def _browser_or_skip():
    if find_browser() is None:
        require("browser", "no Chromium installed (Debian: apt-get install chromium)")


def test_report_renders_in_a_headless_browser(tmp_path, evaluation):
    _browser_or_skip()
    # a page whose one figure is a 300 x 120 block of pure red: drawn only if the embedded
    # image was decoded
    block = np.zeros((120, 300, 3), np.uint8)
    block[..., 0] = 255
    write_image(tmp_path / "block.png", block)
    write_report(tmp_path, "# Block\n\n![red](block.png)\n", {"block": "a red rectangle"})
    (tmp_path / "block.png").unlink()  # the HTML must not need the file any more
    shot = read_image(screenshot(tmp_path / "report.html", tmp_path / "block_shot.png", 800, 600))
    red = (shot[..., 0] > 0.95) & (shot[..., 1] < 0.05) & (shot[..., 2] < 0.05)
    assert red.sum() >= 0.9 * 300 * 120
    assert (shot.mean(-1) < 0.3).sum() > 200  # the text is drawn too

    out, _ = evaluation
    shot = read_image(screenshot(out / "report.html", tmp_path / "evaluation_shot.png"))
    grey = shot.mean(-1)
    assert grey.std() > 0.05, "blank page"
    assert (grey < 0.5).mean() > 0.005  # text and table lines


def test_every_report_reads_well_at_100_percent(tmp_path, synth_data, evaluation):
    """analyze, evaluate and dilution reports: figures embedded and no wider than the page's
    column, no literal Markdown, counts as whole numbers (the demo's: tests/test_end_to_end.py)."""
    from report_checks import check_report

    from beadseg.analysis import analyze_dataset
    from beadseg.data.synth import synth_dilution_series
    from beadseg.workflows import dilution, predict

    analyze_dataset(synth_data, tmp_path / "an", workers=1)
    text = check_report(tmp_path / "an" / "report.html", figures=3)
    assert "synthetic tiles" in text  # synth recorded its tiles as generated: not real ones
    check_report(evaluation[0] / "report.html", figures=1)
    synth_dilution_series(tmp_path / "series", (160, 640, 2560), 2, 1, size=96, seed=0)
    predict("default", tmp_path / "series" / "images", tmp_path / "pred")
    dilution(tmp_path / "pred", tmp_path / "dil")
    text = check_report(tmp_path / "dil" / "report.html", figures=1)
    assert "Slope -" in text and "source frame" in text
