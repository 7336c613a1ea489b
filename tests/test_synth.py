import numpy as np

from beadseg.core.masks import read_mask
from beadseg.data.synth import synth_dataset, synth_image


def test_seeded_and_reproducible():
    a, b = synth_image(96, 20, seed=5), synth_image(96, 20, seed=5)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.image, synth_image(96, 20, seed=6).image)


def test_bead_sizes_and_darkness():
    s = synth_image(256, 60, seed=2, radius_px=3.4)
    areas = np.bincount(s.labels.ravel())[1:]
    assert s.labels.max() == 60
    assert 25 < np.median(areas) < 50  # ~6-7 px across, like the real beads
    grey = s.image.mean(-1)
    assert grey[s.mask].mean() < grey[~s.mask].mean() - 5  # beads are dark


def test_dense_images_reach_700_beads():
    s = synth_image(512, 750, seed=0)
    assert s.labels.max() >= 700


def test_dataset_masks_equal_labels(tmp_path):
    import tifffile

    names = synth_dataset(tmp_path, n=4, size=64, seed=0)
    assert len(names) == 4
    for n in names:
        m = read_mask(tmp_path / "masks" / f"{n}.png").mask
        lab = tifffile.imread(tmp_path / "labels" / f"{n}.tif")
        np.testing.assert_array_equal(m, lab > 0)
