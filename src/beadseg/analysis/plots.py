"""Figures of the dataset doctor.

* ``distribution_analysis.png`` (matplotlib): distributions per domain, drawn in this process
  after the per-image pass (a child forked to import matplotlib meanwhile could deadlock in a
  process that runs threads, and was not measurably faster: see
  :func:`beadseg.analysis.fingerprint.measure_all`);
* ``sample_images.png`` and ``registration.png``: image panels at native resolution composed
  with numpy and labelled with Pillow (no resampling; ~10x faster than the same panels through
  matplotlib's imshow and tight_layout, measured on the 79 dev tiles).

Real and synthetic tiles are told apart in every panel: colour blue = real, orange = synthetic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.filters import window_max
from ..core.masks import read_pair
from .domains import REAL, SYNTHETIC
from .report import fmt, gain_text

COLOURS = {REAL: "tab:blue", SYNTHETIC: "tab:orange"}
#: the largest side of a sample image shown whole: two side by side (and the gap) fit a report
#: page's column at native resolution
SAMPLE_SIDE_PX = 512
RGB = {REAL: (31, 119, 180), SYNTHETIC: (255, 127, 14)}


def distributions_payload(summary: dict, ms) -> dict:
    """What :func:`plot_distributions` needs: per-image scalars, object areas, headlines."""
    return {
        "per_image": [
            {
                k: r[k]
                for k in (
                    "name",
                    "domain",
                    "foreground_fraction",
                    "beads_split",
                    "brightness",
                    "contrast",
                    "dilution",
                    "mask_corr_best",
                    "mask_fits_image",
                    "grade",
                    "source_frame",
                    "height",
                    "width",
                )
            }
            for r in summary["per_image"]
        ],
        "areas": {
            d: np.concatenate([m.arrays.areas for m in ms if m.domain == d] + [np.zeros(0)])
            for d in summary["domains"]
        },
        "domains": summary["domains"],
        "training_domain": summary["training_domain"],
        "overlap_ious": [
            p["mask_iou"] for p in summary["checks"]["overlap_agreement"]["pairs"] if p["overlap_px"]
        ],
    }


# ----------------------------------------------------------------------------- distributions


def _by_domain(rows, key):
    return {
        d: np.array([r[key] for r in rows if r["domain"] == d], float)
        for d in (REAL, SYNTHETIC)
        if any(r["domain"] == d for r in rows)
    }


def _hist(ax, groups: dict, bins, title, xlabel, ylabel="images", log_x=False):
    from matplotlib.ticker import MaxNLocator

    for d, v in groups.items():
        ax.hist(v, bins=bins, color=COLOURS[d], alpha=0.6, label=f"{d} ({len(v)})", histtype="stepfilled")
    if log_x:
        ax.set_xscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=9)


def _panel_density(ax, p):
    counts = _by_domain(p["per_image"], "beads_split")
    top = max((v.max(initial=1) for v in counts.values()), default=1)
    bins = np.geomspace(1, max(top, 2) * 1.1, 25)
    _hist(
        ax,
        {d: np.maximum(v, 1) for d, v in counts.items()},
        bins,
        "Beads per image (watershed split)",
        "beads",
        log_x=True,
    )
    train = p["domains"][p["training_domain"]]
    for e in train["density_bins"]["edges"][1:-1]:
        ax.axvline(max(float(e), 1), color=COLOURS[p["training_domain"]], ls="--", lw=0.8)
    ax.set_title(f"Beads per image\n(dashed: {p['training_domain']} density bins)")


def _panel_areas(ax, p):
    top = max((a.max(initial=0) for a in p["areas"].values()), default=0)
    bins = np.arange(0, min(top, 400) + 5, 4)
    for d, a in p["areas"].items():
        if len(a):
            ax.hist(
                a,
                bins=bins,
                color=COLOURS[d],
                alpha=0.6,
                label=f"{d}: median {p['domains'][d]['median_object_area_px']:.0f} px",
                histtype="stepfilled",  # one polygon instead of a patch per bin: faster to draw
            )
    # a log axis needs a bar (none when every mask is empty, or one blob past the last bin)
    if any(np.any(np.asarray(a) <= bins[-1]) for a in p["areas"].values() if len(a)):
        ax.set_yscale("log")
    ax.set(title="Object area", xlabel="area (px)", ylabel="objects")
    ax.legend(fontsize=9)


def _panel_quality(ax, p):
    for d, marker in ((REAL, "o"), (SYNTHETIC, "x")):
        rows = [r for r in p["per_image"] if r["domain"] == d]
        if rows:
            ax.scatter(
                [r["brightness"] for r in rows],
                [r["contrast"] for r in rows],
                s=18,
                marker=marker,
                color=COLOURS[d],
                label=d,
            )
    ax.set(title="Brightness vs contrast", xlabel="mean grey (0-255)", ylabel="grey SD (0-255)")
    ax.legend(fontsize=9)


def _panel_dilution(ax, p):
    d = p["training_domain"]
    fit = p["domains"].get(d, {}).get("dilution_fit")
    rows = [r for r in p["per_image"] if r["domain"] == d and r["dilution"] and r["beads_split"] > 0]
    if not rows:
        ax.text(0.5, 0.5, "no dilution in the file names", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    dens = [r["beads_split"] / (r["height"] * r["width"] / 1e6) for r in rows]
    ax.loglog(
        [r["dilution"] for r in rows], dens, "o", ms=3, alpha=0.4, color=COLOURS[d], label=f"{d} images"
    )
    frames = {}
    for r, v in zip(rows, dens):
        frames.setdefault((r["source_frame"], r["dilution"]), []).append(v)
    ax.loglog(
        [k[1] for k in frames],
        [np.mean(v) for v in frames.values()],
        "s",
        ms=7,
        mfc="none",
        color="k",
        label="source frames",
    )
    if fit:
        xs = np.geomspace(min(r["dilution"] for r in rows), max(r["dilution"] for r in rows), 20)
        lo, hi = fit["slope_ci95"]  # None over two frames: no interval
        ax.loglog(
            xs,
            10 ** (fit["intercept"] + fit["slope"] * np.log10(xs)),
            "k-",
            label=f"fit over {fit['n_points']} frames: {fmt(fit['slope'])} [{fmt(lo)}, {fmt(hi)}]",
        )
    ax.set(title=f"Beads per MP vs dilution ({d} tiles)", xlabel="dilution", ylabel="beads / MP")
    ax.legend(fontsize=9)


def _panel_fit(ax, p):
    groups = _by_domain(p["per_image"], "mask_corr_best")
    _hist(
        ax,
        {d: v[np.isfinite(v)] for d, v in groups.items()},
        np.linspace(0, 1, 26),
        "Mask fit:\ncorrelation with bead evidence",
        "correlation (best shift)",
    )
    for r in p["per_image"]:
        if not r["mask_fits_image"] and r["mask_corr_best"] is not None:
            ax.annotate(
                r["name"], (r["mask_corr_best"], 0.5), rotation=90, fontsize=8, color="tab:red", va="bottom"
            )


def _panel_grades(ax, p):
    from matplotlib.ticker import MaxNLocator

    doms = list(p["domains"])
    bottom = np.zeros(len(doms))
    for grade, colour in (("good", "tab:green"), ("fixable", "gold"), ("unusable", "tab:red")):
        v = np.array([p["domains"][d]["grade_counts"][grade] for d in doms], float)
        ax.bar(doms, v, bottom=bottom, color=colour, label=grade)
        bottom += v
    for tick, d in zip(ax.get_xticklabels(), doms):
        tick.set_color(COLOURS[d])
    ax.set(title="Label grades", ylabel="images")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=9)


def _panel_overlap(ax, p):
    from matplotlib.ticker import MaxNLocator

    ious = p["overlap_ious"]
    if not ious:
        ax.text(0.5, 0.5, "no overlapping grid neighbours", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    ax.hist(ious, bins=np.linspace(0, 1, 21), color=COLOURS[REAL], histtype="stepfilled")
    ax.set(
        title=f"Masks on shared strips (mean IoU {np.mean(ious):.2f})",
        xlabel="IoU of neighbouring tiles' masks",
        ylabel="tile pairs",
    )
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def plot_distributions(payload: dict, path: Path) -> None:
    """distribution_analysis.png: foreground, beads per image, object area, brightness vs
    contrast, dilution, mask fit, label grades, overlap agreement; each domain its colour.

    Eight panels in two columns, 1000 px wide: a report page shows it at its own size, so its
    text reads at 100 % zoom (:data:`beadseg.outputs.figures.REPORT_FIGURE_INCHES`)."""
    from ..outputs.figures import REPORT_DPI, REPORT_FIGURE_INCHES, pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(4, 2, figsize=(REPORT_FIGURE_INCHES, 17))
    # fixed margins: constrained/tight layout would measure every tick label (~0.8 s of ~1 s)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.035, top=0.96, wspace=0.28, hspace=0.4)
    _hist(
        ax[0, 0],
        _by_domain(payload["per_image"], "foreground_fraction"),
        np.linspace(0, 1, 41),
        "Foreground fraction per image",
        "mask pixels / pixels",
    )
    _panel_density(ax[0, 1], payload)
    _panel_areas(ax[1, 0], payload)
    _panel_quality(ax[1, 1], payload)
    _panel_dilution(ax[2, 0], payload)
    _panel_fit(ax[2, 1], payload)
    _panel_grades(ax[3, 0], payload)
    _panel_overlap(ax[3, 1], payload)
    save_figure(fig, path, dpi=REPORT_DPI)


# ----------------------------------------------------------------------------- image panels


def _font(size: int = 13):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _outline(mask: np.ndarray) -> np.ndarray:
    """Inner boundary: mask pixels with a background pixel among their 8 neighbours."""
    return mask & window_max(~mask, 1)


def _rgb8(image: np.ndarray) -> np.ndarray:
    rgb = np.repeat(image, 3, -1) if image.shape[-1] == 1 else image[..., :3]
    return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)


def _panel(rgb: np.ndarray, lines: list[str], domain: str, width: int):
    """An image with a caption band above it; the band's left bar is the domain colour."""
    from PIL import Image, ImageDraw

    band = 18 * len(lines) + 6
    canvas = Image.new("RGB", (width, band + rgb.shape[0]), "white")
    canvas.paste(Image.fromarray(rgb), (0, band))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([0, 0, 5, band - 2], fill=RGB[domain])
    for i, line in enumerate(lines):
        draw.text((10, 3 + 18 * i), line, fill=(0, 0, 0), font=_font())
    return canvas, draw, band


def _grid(panels: list, cols: int, path: Path) -> None:
    from PIL import Image

    from ..core.files import atomic_path

    rows = int(np.ceil(len(panels) / cols))
    w = max(p.width for p in panels)
    h = max(p.height for p in panels)
    sheet = Image.new("RGB", (cols * w + (cols - 1) * 8, rows * h + (rows - 1) * 8), "white")
    for i, p in enumerate(panels):
        sheet.paste(p, ((i % cols) * (w + 8), (i // cols) * (h + 8)))
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG", compress_level=1)


def _empty(path: Path, text: str) -> None:
    from PIL import Image, ImageDraw

    from ..core.files import atomic_path

    im = Image.new("RGB", (520, 40), "white")
    ImageDraw.Draw(im).text((10, 10), text, fill=(0, 0, 0), font=_font())
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")


def pick_samples(summary: dict, n: int = 6) -> list[str]:
    """Flagged real tiles first (unusable, then most unlabelled), then real tiles spanning the
    density range, then one synthetic tile."""
    rows = summary["per_image"]
    real = [r for r in rows if r["domain"] == REAL]
    synth = [r for r in rows if r["domain"] != REAL]
    flagged = sorted(
        (r for r in real if r["grade"] == "unusable" or r["missing_labels"]),
        key=lambda r: (r["grade"] != "unusable", -r["unlabelled_fraction"]),
    )
    picks = [r["name"] for r in flagged[: max(n // 2, 1)]]
    rest = sorted((r for r in real if r["name"] not in picks), key=lambda r: r["beads_split"])
    room = n - len(picks) - (1 if synth else 0)
    if rest and room > 0:
        idx = np.unique(np.linspace(0, len(rest) - 1, min(room, len(rest))).round().astype(int))
        picks += [rest[i]["name"] for i in idx]
    picks += [r["name"] for r in synth[: n - len(picks)]]
    return picks[:n]


def draw_samples(summary: dict, ms, pairs, path: Path, n: int = 6) -> None:
    """sample_images.png: flagged real tiles first, then real tiles across the density range and
    a synthetic one: mask outlines (yellow), bead candidates without a mask (red circles)."""
    by_pair = {p.name: p for p in pairs}
    by_m = {m.name: m for m in ms}
    rows = {r["name"]: r for r in summary["per_image"]}
    thr = summary["checks"]["missing_labels"]["image_threshold"]
    panels = []
    for name in pick_samples(summary, n):
        image, info = read_pair(by_pair[name])
        rgb = _rgb8(image)
        rgb[_outline(info.mask)] = (255, 230, 0)
        r, a = rows[name], by_m[name].arrays
        miss = (a.peak_values >= thr[name]) & a.peak_unlabelled
        # two panels side by side fit a report page at native resolution: larger images show
        # the SAMPLE_SIDE_PX square holding the most mask
        sl = _crop_box(info.mask, SAMPLE_SIDE_PX)
        cropped = rgb.shape[0] > SAMPLE_SIDE_PX or rgb.shape[1] > SAMPLE_SIDE_PX
        rgb = rgb[sl] if cropped else rgb
        where = f", {rgb.shape[1]}x{rgb.shape[0]} px at x={sl[1].start}, y={sl[0].start}" if cropped else ""
        lines = [
            name + where,
            f"{r['domain']}: {r['beads_split']} beads, foreground {r['foreground_fraction']:.3f}",
            f"{int(miss.sum())} unlabelled candidates; label {r['grade']}",
        ]
        panel, draw, band = _panel(rgb, lines, r["domain"], max(rgb.shape[1], 380))
        rc = a.peak_rc[miss] - ([sl[0].start, sl[1].start] if cropped else 0)
        for y, x in rc:
            if 0 <= y < rgb.shape[0] and 0 <= x < rgb.shape[1]:
                draw.ellipse([x - 7, y - 7 + band, x + 7, y + 7 + band], outline=(255, 0, 0), width=2)
        panels.append(panel)
    if panels:
        _grid(panels, 2, path)
    else:
        _empty(path, "no images")


def _crop_box(mask: np.ndarray, crop: int) -> tuple[slice, slice]:
    """The crop x crop window holding the most mask pixels (integral image)."""
    h, w = mask.shape
    c = min(crop, h, w)
    s = np.pad(mask.astype(np.int32).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    win = s[c:, c:] - s[:-c, c:] - s[c:, :-c] + s[:-c, :-c]
    y, x = np.unravel_index(np.argmax(win), win.shape)
    return slice(y, y + c), slice(x, x + c)


def _crop_panel(rgb, mask, sl, colour, lines, domain, zoom):
    shown = rgb[sl].copy()
    shown[_outline(mask[sl])] = colour
    shown = shown.repeat(zoom, 0).repeat(zoom, 1)
    return _panel(shown, lines, domain, shown.shape[1])[0]


def _registration_rows(summary: dict, n: int) -> list[tuple[str, str, dict]]:
    fits = summary["checks"]["mask_fit"]["not_fitting"]
    dom = {r["name"]: r["domain"] for r in summary["per_image"]}
    rows = [("fit", f["name"], f) for f in sorted(fits, key=lambda f: dom[f["name"]] != REAL)]
    rows += [("shift", f["name"], f) for f in summary["checks"]["registration"]["flagged"]]
    return rows[:n]


def draw_registration(summary: dict, pairs, path: Path, n: int = 6, crop: int = 128) -> None:
    """registration.png: masks that do not fit their image (on their own image, and on the image
    they belong to) and misregistered masks (as given, red; shifted, green); real tiles first."""
    from ..core.registration import shift_mask

    by_pair = {p.name: p for p in pairs}
    dom = {r["name"]: r["domain"] for r in summary["per_image"]}
    panels = []
    for kind, name, f in _registration_rows(summary, n):
        image, info = read_pair(by_pair[name])
        sl = _crop_box(info.mask, crop)
        rgb = _rgb8(image)
        head = [name, f"{dom[name]} tile"]
        if kind == "shift":
            left = _crop_panel(rgb, info.mask, sl, (255, 0, 0), head + ["mask as given"], dom[name], 3)
            moved = shift_mask(info.mask, f["dy"], f["dx"])
            right = _crop_panel(
                rgb,
                moved,
                sl,
                (0, 255, 0),
                head + [f"shifted dy={f['dy']}, dx={f['dx']}: fit {gain_text(f['gain'])}"],
                dom[name],
                3,
            )
        else:
            left = _crop_panel(
                rgb,
                info.mask,
                sl,
                (255, 0, 0),
                head + [f"does not fit: corr {f['fit']:.2f} vs {f['reference']:.2f}"],
                dom[name],
                3,
            )
            other = f["belongs_to"]
            if other:
                oimg, _ = read_pair(by_pair[other])
                right = _crop_panel(
                    _rgb8(oimg),
                    info.mask,
                    sl,
                    (0, 255, 0),
                    [other, f"{dom[other]} tile", "the same mask on the image it belongs to"],
                    dom[other],
                    3,
                )
            else:
                right = _crop_panel(
                    rgb,
                    np.zeros_like(info.mask),
                    sl,
                    (0, 0, 0),
                    head + ["image alone (no image of the set matches)"],
                    dom[name],
                    3,
                )
        panels += [left, right]
    if panels:
        _grid(panels, 2, path)
    else:
        _empty(path, "every mask fits its image; no misregistered masks")
