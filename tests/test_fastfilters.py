import numpy as np
import pytest
from scipy import ndimage as ndi

from beadseg.core.filters import box_mean, gaussian_blur, gaussian_exact, gaussian_smooth, window_max
from beadseg.core.registration import block_mean, correlation_by_shift, cross_sums, register_mask, shift_mask


@pytest.mark.parametrize("shape", [(37, 50), (64, 64), (5, 9)])
def test_filters_equal_scipy(shape):
    rng = np.random.default_rng(0)
    a = rng.random(shape).astype(np.float32)
    for r in (1, 2, 3):
        assert np.array_equal(window_max(a, r), ndi.maximum_filter(a, 2 * r + 1))
    m = a > 0.8
    assert np.array_equal(window_max(m, 2), ndi.binary_dilation(m, np.ones((5, 5))))
    assert np.allclose(box_mean(a, 5, passes=2), ndi.uniform_filter(ndi.uniform_filter(a, 5), 5), atol=1e-6)
    assert np.allclose(gaussian_smooth(a, 1.0), ndi.gaussian_filter(a, 1.0, truncate=3.0), atol=1e-6)
    assert np.allclose(
        block_mean(a, 2),
        a[: shape[0] // 2 * 2, : shape[1] // 2 * 2].reshape(shape[0] // 2, 2, shape[1] // 2, 2).mean((1, 3)),
        atol=1e-6,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gaussian_exact_is_scipy_bit_for_bit(dtype):
    """Ties must stay ties: a distance map of two touching discs (half-integer values,
    mirror-symmetric) smoothed exactly as scipy does, borders included."""
    yy, xx = np.mgrid[:41, :57]
    m = (np.hypot(yy - 20, xx - 20) <= 6) | (np.hypot(yy - 20, xx - 31) <= 6) | (yy < 2)
    dist = (ndi.distance_transform_cdt(m, "taxicab") + ndi.distance_transform_cdt(m, "chessboard")) / 2
    values = (dist * 3).astype(dtype)
    for sigma in (0.7, 1.3):
        ref = ndi.gaussian_filter(values, sigma, truncate=3.0)
        got = gaussian_exact(values, sigma, truncate=3.0)
        assert got.dtype == ref.dtype and np.array_equal(got, ref)


def test_fft_cross_sums_equal_shifted_sums():
    rng = np.random.default_rng(1)
    m = rng.random((40, 30)) > 0.9
    e = rng.normal(size=(40, 30)).astype(np.float32)
    sums = cross_sums(m, e, 3)
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            # the mask moved by (dy, dx), pixels shifted in are background
            ref = float((shift_mask(m, dy, dx) * e).sum())
            assert sums[dy + 3, dx + 3] == pytest.approx(ref, abs=1e-3)
    c = correlation_by_shift(m, e, 3)
    assert c[3, 3] == pytest.approx(np.corrcoef(m.ravel(), e.ravel())[0, 1], abs=1e-5)


def test_register_mask_correlation_and_empty_mask():
    rng = np.random.default_rng(2)
    e = rng.normal(size=(64, 64)).astype(np.float32)
    m = e > 1.5
    r = register_mask(shift_mask(m, 2, -1), e, 4)
    assert (r.dy, r.dx) == (-2, 1) and r.corr_best > r.corr_zero
    assert r.corr_best == pytest.approx(np.corrcoef(m.ravel(), e.ravel())[0, 1], abs=0.02)
    empty = register_mask(np.zeros((64, 64), bool), e, 4)
    assert not empty.flagged and np.isnan(empty.corr_best)


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (2, 40), (17, 9)])
def test_gaussian_exact_equals_scipy_with_kernels_wider_than_the_image(shape):
    x = np.random.default_rng(1).random(shape)
    for sigma in (0.7, 3.0, 12.0):
        np.testing.assert_array_equal(
            gaussian_exact(x, sigma, 4.0), ndi.gaussian_filter(x, sigma, truncate=4.0)
        )


def test_gaussian_blur_smooths_planes_not_channels():
    x = np.random.default_rng(2).random((12, 10, 3)).astype(np.float32)
    got = gaussian_blur(x, 1.5)
    assert got.dtype == np.float32
    for c in range(3):
        np.testing.assert_array_equal(got[..., c], ndi.gaussian_filter(x[..., c], 1.5))
