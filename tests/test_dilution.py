import csv
import json

import numpy as np
import pytest
from scipy import stats

from beadseg.core.dilution import fit_dilution, frame_densities, stock_concentration
from beadseg.core.errors import InputError
from beadseg.evaluation.dilution_report import dilution_report
from beadseg.evaluation.samples import read_sample_sheet


def _write_counts(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _frames_counts(rng, stock=2e6, tiles=3, low_frame=None):
    """Tiles of several frames per dilution; counts of one frame's tiles are correlated (one
    sample), like overlapping tiles of a real frame."""
    rows = []
    for d in (160, 320, 640, 1280, 2560, 5120):
        for k in range(2):
            frame = f"{d}x_f{k}"
            level = stock / d * rng.lognormal(0, 0.15) * (0.25 if frame == low_frame else 1)
            for t in range(tiles):
                rows.append(
                    {
                        "image": f"{frame}_grid_r0_c{t}",
                        "source_frame": frame,
                        "dilution": d,
                        "count": rng.poisson(level * 0.25),
                        "area_mp": 0.25,
                    }
                )
    return rows


def test_fit_dilution_exact():
    f = fit_dilution([100, 200, 400, None], [80, 40, 20, 5])
    assert f.slope == pytest.approx(-1) and f.r2 == pytest.approx(1) and f.n_points == 3


def test_per_image_fit_matches_scipy_linregress():
    rng = np.random.default_rng(3)
    d = np.repeat([100, 200, 400, 800], 3)
    y = 1e5 / d * rng.lognormal(0, 0.2, len(d))
    f = fit_dilution(d, y)
    ref = stats.linregress(np.log10(d), np.log10(y))
    t = stats.t.ppf(0.975, len(d) - 2)
    assert f.slope == pytest.approx(ref.slope) and f.r2 == pytest.approx(ref.rvalue**2)
    assert f.slope_ci95 == pytest.approx((ref.slope - t * ref.stderr, ref.slope + t * ref.stderr))


def test_ci_over_frames_equals_ols_over_frame_densities(tmp_path):
    rows = _frames_counts(np.random.default_rng(1))
    r = dilution_report(_write_counts(tmp_path / "counts.csv", rows), tmp_path / "dil")
    # the same fit by hand: one point per frame, density = summed count / summed area
    frames = sorted({x["source_frame"] for x in rows})
    dil = np.array([next(x["dilution"] for x in rows if x["source_frame"] == f) for f in frames])
    dens = np.array(
        [
            sum(x["count"] for x in rows if x["source_frame"] == f)
            / sum(x["area_mp"] for x in rows if x["source_frame"] == f)
            for f in frames
        ]
    )
    ref = stats.linregress(np.log10(dil), np.log10(dens))
    t = stats.t.ppf(0.975, len(frames) - 2)
    assert r["n_frames"] == 12 and r["fit"]["n_points"] == 12 and r["n_images"] == 36
    assert r["slope"] == pytest.approx(ref.slope)
    assert r["slope_ci95"][0] <= -1 <= r["slope_ci95"][1]  # the true slope
    assert r["slope_ci95"] == pytest.approx([ref.slope - t * ref.stderr, ref.slope + t * ref.stderr])
    # treating the 36 overlapping tiles as independent gives a narrower interval
    per_image = r["fit_per_image"]
    assert per_image["n_points"] == 36
    assert np.diff(per_image["slope_ci95"])[0] < np.diff(r["slope_ci95"])[0]
    saved = json.loads((tmp_path / "dil" / "dilution.json").read_text())
    assert saved["n_frames"] == 12 and saved["slope_ci95"] == pytest.approx(r["slope_ci95"])
    for f in ("dilution.png", "dilution.csv"):
        assert (tmp_path / "dil" / f).is_file()


def test_stock_concentration_and_outlier_frame(tmp_path):
    rows = _frames_counts(np.random.default_rng(2), stock=2e6, low_frame="640x_f1")
    r = dilution_report(
        _write_counts(tmp_path / "counts.csv", rows), tmp_path / "dil", pixel_size_um=0.5, depth_um=100
    )
    st = r["stock"]
    ul_per_mp = 1e6 * 0.5**2 * 100 / 1e9
    assert r["units"] == "beads per microlitre" and st["unit"] == "beads per microlitre"
    assert st["outliers"] == ["640x_f1"] and r["outliers"] == ["640x_f1"]
    assert st["ratio_to_median"]["640x_f1"] == pytest.approx(0.25, rel=0.35)
    v, lo, hi = st["without_outliers"]
    assert lo < 2e6 / ul_per_mp < hi and v == pytest.approx(2e6 / ul_per_mp, rel=0.15)
    assert st["ci95"][0] < st["value"] < st["ci95"][1]


def test_stock_interval_is_a_t_interval_of_log_frame_stocks():
    frames = frame_densities(
        [
            {"source_frame": f"{d}x_f", "dilution": d, "count": c, "area_mp": 1.0}
            for d, c in ((100, 1000), (200, 520), (400, 240))
        ]
    )
    st = stock_concentration(frames)
    logs = np.log10([1000 * 100, 520 * 200, 240 * 400])
    half = stats.t.ppf(0.975, 2) * logs.std(ddof=1) / np.sqrt(3)
    assert st.value == pytest.approx(10 ** logs.mean())
    assert st.ci95 == pytest.approx((10 ** (logs.mean() - half), 10 ** (logs.mean() + half)))
    assert st.unit == "beads per megapixel" and st.outliers == []


def test_sample_sheet_gives_the_same_fit_as_names(tmp_path):
    rows = _frames_counts(np.random.default_rng(4))
    by_name = dilution_report(_write_counts(tmp_path / "named.csv", rows), None)
    # the same counts under names that carry no dilution, and a sheet (with a BOM) that gives it
    codes = {f: f"sample{i}" for i, f in enumerate(sorted({x["source_frame"] for x in rows}))}
    anon = [
        {
            "image": x["image"].replace(x["source_frame"], f"run_{codes[x['source_frame']]}_a"),
            "count": x["count"],
            "area_mp": x["area_mp"],
        }
        for x in rows
    ]
    counts = _write_counts(tmp_path / "anon.csv", anon)
    sheet = tmp_path / "sheet.csv"
    lines = ["sample,dilution"] + [f"{c},{f.split('x_')[0]}x" for f, c in codes.items()]
    sheet.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    by_sheet = dilution_report(counts, tmp_path / "out", samples=sheet)
    assert by_sheet["slope"] == pytest.approx(by_name["slope"])
    assert by_sheet["slope_ci95"] == pytest.approx(by_name["slope_ci95"])
    assert by_sheet["n_frames"] == by_name["n_frames"]
    assert by_sheet["dilution_source"].startswith("sample sheet")


def test_sample_sheet_prefix_image_and_precedence(tmp_path):
    sheet = tmp_path / "s.csv"
    sheet.write_text("\ufeffprefix,image,dilution\nplateA_,,1:320\nplateA_w1,,640X\n,plateA_w1_t3,80\n")
    s = read_sample_sheet(sheet)
    assert s.dilution_of("plateA_w2_t1.png") == 320
    assert s.dilution_of("plateA_w1_t1") == 640  # the longest prefix wins
    assert s.dilution_of("plateA_w1_t3.png") == 80  # an exact image beats any prefix
    assert s.dilution_of("plateB_w1_t1") is None
    bad = tmp_path / "bad.csv"
    bad.write_text("name,dil\na,1\n")
    with pytest.raises(InputError, match="needs 'dilution'"):
        read_sample_sheet(bad)


@pytest.mark.parametrize(
    "args",
    [
        ["--pixel-size-um", "0.5"],
        ["--depth-um", "100"],
        ["--pixel-size-um", "0", "--depth-um", "100"],
        ["--pixel-size-um", "0.5", "--depth-um", "-3"],
    ],
)
def test_pixel_size_without_depth_is_an_error(tmp_path, capsys, args):
    from beadseg.cli.app import main

    counts = _write_counts(tmp_path / "counts.csv", _frames_counts(np.random.default_rng(0)))
    with pytest.raises(SystemExit) as e:
        main(["dilution", str(counts), "--out", str(tmp_path / "dil"), *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --") and err.count("\n") == 1
    assert not (tmp_path / "dil").exists()


def test_cli_dilution_prints_stock_and_outliers(tmp_path, capsys):
    from beadseg.cli.app import main

    rows = _frames_counts(np.random.default_rng(2), low_frame="640x_f1")
    counts = _write_counts(tmp_path / "counts.csv", rows)
    with pytest.raises(SystemExit) as e:
        main(
            [
                "dilution",
                str(counts),
                "--out",
                str(tmp_path / "dil"),
                "--pixel-size-um",
                "0.5",
                "--depth-um",
                "100",
            ]
        )
    assert e.value.code in (0, None)
    out = capsys.readouterr().out
    assert "fitted over 12 source frames" in out and "beads per microlitre" in out
    assert "outlier frame: 640x_f1" in out


def test_no_dilution_anywhere_is_an_input_error(tmp_path):
    counts = _write_counts(tmp_path / "c.csv", [{"image": "a", "count": 3, "area_mp": 1.0}])
    with pytest.raises(InputError, match="--samples"):
        dilution_report(counts)


def test_a_predict_folder_stands_for_its_counts_csv(tmp_path):
    """Users give the folder `beadseg predict` wrote; it means the counts.csv in it."""
    pred = tmp_path / "pred"
    pred.mkdir()
    rows = _frames_counts(np.random.default_rng(3))
    counts = _write_counts(pred / "counts.csv", rows)
    by_folder, by_file = dilution_report(pred), dilution_report(counts)
    assert by_folder["fit"] == by_file["fit"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="folder without counts.csv"):
        dilution_report(tmp_path / "empty")
    with pytest.raises(InputError, match="does not exist"):
        dilution_report(tmp_path / "nowhere.csv")
