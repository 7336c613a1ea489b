import numpy as np
import pytest

from beadseg.core.domain import domain_check, domain_sample, image_features, summarise_features


def _tile(seed, n=12, radius=3.0, bead_rgb=(0.30, 0.33, 0.38), size=64):
    """A grey background at 0.5 with noise and dark discs of a given colour; image and labels."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size, 3), 0.5, np.float32) + rng.normal(0, 0.01, (size, size, 3))
    labels = np.zeros((size, size), np.int32)
    yy, xx = np.mgrid[:size, :size]
    for k in range(n):
        cy, cx = rng.uniform(radius + 1, size - radius - 1, 2)
        disc = np.hypot(yy - cy, xx - cx) <= radius
        img[disc] = bead_rgb
        labels[disc] = k + 1
    return img.astype(np.float32), labels


@pytest.mark.parametrize("size", [64, (600, 1100), (1100, 2000)])
def test_the_domain_sample_gives_the_features_of_the_image(size):
    """What predict keeps of a frame for the check (a subsample and the central window, in
    float16) gives exactly the features of the whole frame in float16."""
    h, w = (size, size) if isinstance(size, int) else size
    img, labels = _tile(1, n=40, size=max(h, w))
    img, labels = img[:h, :w], labels[:h, :w]
    sample = domain_sample(img, np.float16)
    if h * w > 4 * 512 * 512:  # a large frame: a fraction of it is kept
        assert sample.sampled.nbytes + sample.window.nbytes < img.astype(np.float16).nbytes / 2
    assert image_features(sample, labels) == image_features(img.astype(np.float16), labels)
    assert image_features(domain_sample(img), labels) == image_features(img, labels)


def test_features_of_a_known_tile():
    img, labels = _tile(0, n=1, radius=3.0)
    f = image_features(img, labels)
    assert f["foreground_fraction"] == pytest.approx((labels > 0).mean())
    assert f["bead_area_px"] == (labels > 0).sum()
    assert f["contrast"] == pytest.approx(1 - np.mean((0.30, 0.33, 0.38)) / 0.5, abs=0.01)
    assert f["bead_colour"] == pytest.approx((0.30 - 0.38) / 0.5, abs=0.01)
    assert f["intensity_p50"] == pytest.approx(0.5, abs=0.01)
    empty = image_features(img, np.zeros_like(labels))
    assert empty["contrast"] is None and empty["bead_area_px"] is None


def test_domain_check_flags_unlike_images_and_names_the_feature():
    fp = summarise_features([image_features(*_tile(s)) for s in range(6)])
    assert fp["n_images"] == 6 and fp["features"]["bead_colour"]["n"] == 6
    ok, reason = domain_check(fp, *_tile(10))
    assert ok and reason == ""
    ok, reason = domain_check(fp, *_tile(11, bead_rgb=(0.40, 0.30, 0.30)))  # pink beads
    assert not ok and reason.startswith("bead_colour")
    ok, reason = domain_check(fp, *_tile(12, n=4, radius=8.0))  # 7x the bead area
    assert not ok and "bead_area_px" in reason
    # fewer beads than ever seen is no sign of another kind of image; many more is
    assert "foreground_fraction" not in domain_check(fp, *_tile(13, n=1))[1]
    assert "foreground_fraction" in domain_check(fp, *_tile(14, n=60))[1]
    assert domain_check(None, *_tile(11, bead_rgb=(0.40, 0.30, 0.30))) == (True, "")
