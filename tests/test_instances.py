import numpy as np

from beadseg.instances import count_beads, filter_sizes, instances_from_mask, split_touching
from beadseg.synth import synth_image


def test_touching_pair_is_split():
    m = np.zeros((20, 30), bool)
    yy, xx = np.mgrid[:20, :30]
    m[(yy - 10) ** 2 + (xx - 10) ** 2 <= 12] = True
    m[(yy - 10) ** 2 + (xx - 17) ** 2 <= 12] = True  # touching the first
    lab = split_touching(m)
    assert lab.max() == 2 and count_beads(m) == 2
    assert np.array_equal(lab > 0, m)


def test_count_equals_split_on_synthetic():
    s = synth_image(256, 400, seed=3)
    assert count_beads(s.mask) == split_touching(s.mask).max()
    assert abs(count_beads(s.mask) - 400) <= 8


def test_size_filters_and_holes():
    m = np.zeros((30, 30), bool)
    m[2:4, 2:4] = True  # 4 px speck
    m[10:20, 10:20] = True
    m[14, 14] = False  # a hole
    from beadseg.config import InstanceConfig

    lab = instances_from_mask(m, None, InstanceConfig(min_area_px=8, split_touching=False))
    assert lab.max() == 1 and lab[14, 14] == 1
    assert filter_sizes(lab, 0, 50).max() == 0  # 100 px object above the maximum


def test_bead_table_equals_regionprops():
    from skimage.measure import regionprops_table

    from beadseg.instances import bead_table

    s = synth_image(96, 30, seed=7)
    img = s.image / 255.0
    lab = s.labels.copy()
    lab[lab == 3] = 0  # a gap in the ids
    t = bead_table(lab, img, img[..., 0])
    ref = regionprops_table(lab, intensity_image=img.mean(-1),
                            properties=("label", "centroid", "area", "equivalent_diameter_area",
                                        "intensity_mean"))
    np.testing.assert_array_equal(t["id"], ref["label"])
    np.testing.assert_allclose(t["centroid_y"], ref["centroid-0"])
    np.testing.assert_allclose(t["centroid_x"], ref["centroid-1"])
    np.testing.assert_allclose(t["area_px"], ref["area"])
    np.testing.assert_allclose(t["equivalent_diameter_px"], ref["equivalent_diameter_area"])
    np.testing.assert_allclose(t["mean_intensity"], ref["intensity_mean"])


def test_fill_holes_equals_scipy():
    from scipy import ndimage as ndi

    from beadseg.instances import fill_holes

    rng = np.random.default_rng(0)
    for _ in range(5):
        m = rng.random((40, 50)) < 0.55
        np.testing.assert_array_equal(fill_holes(m), ndi.binary_fill_holes(m))
