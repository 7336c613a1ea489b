"""The package-root API a Python user starts from (README, "Python API")."""

import subprocess
import sys

import numpy as np

import beadseg
from beadseg.data.synth import synth_image


def test_root_api_segments_one_array_and_tables_its_beads():
    s = synth_image(256, 25, seed=3, cluster_fraction=0.0)
    seg = beadseg.segment(beadseg.load_model("default"), s.image)
    assert abs(int(seg.labels.max()) - int(s.labels.max())) <= 1  # 25 well-separated beads
    table = beadseg.bead_table(seg.labels, s.image)
    assert len(table["id"]) == seg.labels.max()
    assert {"centroid_x", "centroid_y", "area_px", "equivalent_diameter_px"} <= set(table)
    assert np.all(table["area_px"] > 0)


def test_import_beadseg_is_cheap_and_names_its_api():
    code = (
        "import sys, beadseg; assert 'torch' not in sys.modules and 'scipy' not in sys.modules; "
        "assert callable(beadseg.segment) and callable(beadseg.predict) and callable(beadseg.train); "
        "print(sorted(beadseg.__all__))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "load_model" in out.stdout and "bead_table" in out.stdout


def test_unknown_root_name_is_an_attribute_error():
    try:
        beadseg.segmnet  # noqa: B018
    except AttributeError as exc:
        assert "segmnet" in str(exc)
    else:
        raise AssertionError("no AttributeError")
