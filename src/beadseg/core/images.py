"""Images: a file -> one canonical array, and arrays -> files.

The canonical array (:func:`read_raw_image` for files, :func:`canonical_image` for arrays) is
``H x W x C`` in the file's own dtype, C = 1 (grey) or 3 (colour): alpha dropped, palette, CMYK
and other colour modes decoded to RGB, NaN and inf refused, and files above
:func:`max_image_pixels` refused from their header, before any pixel is decoded.

A network sees an image only through :func:`beadseg.core.normalization.model_input` (the
canonical array -> the model's normalisation -> the model's channels): in training,
prediction, evaluation and napari alike. :func:`read_image` scales the canonical array to
float32 in [0, 1] (:func:`to_unit_float`) for display only: overlays, figures and the dataset
doctor's grey levels.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from .errors import BeadsegError, ConfigError, InputError
from .files import atomic_path, require_file

_TIFF = (".tif", ".tiff")

#: The most pixels (height x width) an image file may have: 2**28, a 16K x 16K frame (the
#: biggest real frames are 4K, 12 MP). A small PNG or TIFF can inflate to gigabytes (a
#: decompression bomb); its header is checked against this before any pixel is decoded.
#: Raise it for one process with the environment variable :data:`MAX_PIXELS_ENV`, or pass
#: ``max_pixels`` to the readers.
MAX_IMAGE_PIXELS = 2**28
MAX_PIXELS_ENV = "BEADSEG_MAX_IMAGE_PIXELS"


def max_image_pixels(max_pixels: int | None = None) -> int:
    """The pixel limit of image files: ``max_pixels`` when given, else the environment variable
    ``BEADSEG_MAX_IMAGE_PIXELS``, else :data:`MAX_IMAGE_PIXELS`.

    Raises
    ------
    ConfigError
        The limit (given or from the environment) is not a positive number.
    """
    source = "max_pixels"
    if max_pixels is None:
        env = os.environ.get(MAX_PIXELS_ENV, "").strip()
        if not env:
            return int(MAX_IMAGE_PIXELS)
        source, max_pixels = MAX_PIXELS_ENV, env
    try:
        limit = int(float(max_pixels))
    except (TypeError, ValueError, OverflowError):
        limit = 0
    if limit <= 0:
        raise ConfigError(
            f"{source}={max_pixels!r} is not a pixel count; give a positive number, e.g. "
            f"{MAX_PIXELS_ENV}={MAX_IMAGE_PIXELS * 4} for 32K x 32K images"
        )
    return limit


def _check_pixels(path: Path, pixels: int, limit: int, shape: tuple[int, ...] | None = None) -> None:
    if pixels > limit:
        size = f" (shape {tuple(int(n) for n in shape)})" if shape else ""
        raise InputError(
            f"{path} has {pixels:,} pixels{size}, more than the limit of {limit:,} (a decompression "
            "bomb, or a mosaic bigger than any microscope frame); if the image is real, raise the "
            f"limit: beadseg --max-image-pixels {pixels} COMMAND ... (or {MAX_PIXELS_ENV}={pixels})"
        )


def _read_raw(path: Path, max_pixels: int | None = None) -> np.ndarray:
    """The pixels of an image file as decoded (no shape or value checks yet)."""
    path = Path(path)
    require_file(path)
    limit = max_image_pixels(max_pixels)
    try:
        if path.suffix.lower() in _TIFF:
            return _read_tiff(path, limit)
        return _read_pillow(path, limit)
    except BeadsegError:
        raise
    except Exception as exc:  # any decoder failure means the file is unusable
        raise InputError(
            f"cannot read {path}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            " (is it a complete PNG/TIFF/JPEG file?)"
        ) from None


def _read_tiff(path: Path, limit: int) -> np.ndarray:
    """The first series of a TIFF (what ``tifffile.imread`` reads), its shape checked first.

    Grey and RGB TIFFs as tifffile decodes them (any bit depth, float, stacks); white-is-zero
    ones inverted; the others - palette, CMYK, YCbCr, CIELab, whose stored values are not
    intensities - as Pillow decodes them (to grey or RGB)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        shape = tuple(series.shape)
        page = tif.pages.first
        samples = int(page.samplesperpixel)
        values = int(np.prod(shape, dtype=np.float64))
        per_pixel = samples if samples > 1 and shape and shape[-1] == samples else 1
        _check_pixels(path, values // per_pixel, limit, shape)
        kind = page.photometric
        if kind in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB):
            return np.asarray(series.asarray())
        if kind == tifffile.PHOTOMETRIC.MINISWHITE:  # 0 is white: stored values inverted
            arr = np.asarray(series.asarray())
            if arr.dtype == bool or arr.dtype.kind == "u":
                return ~arr if arr.dtype == bool else np.iinfo(arr.dtype).max - arr
            raise InputError(
                f"{path} is a white-is-zero {arr.dtype} TIFF, whose intensities are ambiguous; "
                "save it as a black-is-zero (min-is-black) TIFF"
            )
    try:
        return _read_pillow(path, limit)
    except Exception as exc:
        raise InputError(
            f"cannot read {path}: a {kind.name} TIFF that Pillow cannot decode ({type(exc).__name__}); "
            "save it as a grey or RGB TIFF"
        ) from None


#: Pillow modes whose pixels numpy takes as they are (grey, RGB, 16/32-bit integer, float)
_PLAIN_MODES = ("1", "L", "LA", "RGB", "RGBA", "I", "F", "I;16", "I;16L", "I;16B", "I;16N")
#: the mode other Pillow modes are decoded to: alpha kept (then dropped) where there is one
_CONVERT = {"La": "LA", "RGBa": "RGBA", "PA": "RGBA", "RGBX": "RGB"}
_PILLOW_SIZE = re.compile(r"\((\d+) pixels\)")


def _read_pillow(path: Path, limit: int) -> np.ndarray:
    """A PNG/JPEG (any format Pillow opens) decoded to grey or RGB(A), its size checked first.

    Pillow directly rather than through imageio: 2.8 vs 3.2 ms per 512-px tile, and no import of
    every Pillow plugin. Pillow's own bomb check (a warning above ``PIL.Image.MAX_IMAGE_PIXELS``,
    an error above twice that) is raised to ``limit``, so that it never refuses an image
    beadseg accepts and beadseg's refusal names the limit to raise (a process-wide Pillow
    setting, only ever raised)."""
    from PIL import Image

    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < limit:
        Image.MAX_IMAGE_PIXELS = limit
    try:
        im = Image.open(path)
    except Image.DecompressionBombError as exc:  # above `limit`: say so in beadseg's words
        found = _PILLOW_SIZE.search(str(exc))
        _check_pixels(path, int(found.group(1)) if found else limit + 1, limit)
        raise
    with im:
        width, height = im.size
        _check_pixels(path, height * width, limit, (height, width))
        return _pillow_array(im)


def _pillow_array(im) -> np.ndarray:
    """The pixels of an open Pillow image: grey and RGB(A) modes as they are; palette, CMYK
    (a CMYK JPEG taken as it is would be inverted), YCbCr, LAB, HSV ... decoded to RGB(A)."""
    mode = im.mode
    if mode not in _PLAIN_MODES:
        target = _CONVERT.get(mode, "RGB")
        if mode == "P":
            target = "RGBA" if "transparency" in im.info else "RGB"
        im = im.convert(target)
    arr = np.asarray(im)
    if not arr.dtype.isnative:  # I;16B: big-endian 16-bit
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def check_finite(arr: np.ndarray, path: str | Path) -> None:
    """Raise :class:`InputError` when a float image holds NaN or inf pixels (a model would turn
    them into a silent wrong count)."""
    if np.issubdtype(arr.dtype, np.floating):
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise InputError(
                f"{path} has {bad} NaN or inf pixel values (of {arr.size}); save the image with "
                "finite values (e.g. replace them by the background level)"
            )


def as_hwc(image: np.ndarray, name: str | Path = "image") -> np.ndarray:
    """The ``H x W x C`` form of an image, C = 1 or 3: a 2-D grey array gets a channel axis,
    grey + alpha and RGBA lose their alpha. The one place an image's shape is coerced.

    Raises
    ------
    InputError
        Not numbers (complex, text, objects), no pixels (a 0 x N array), or any other shape (a
        stack, channels first, a 1-D array).
    """
    arr = np.asarray(image)
    if arr.dtype.kind not in "biuf":
        raise InputError(f"{name} has pixels of type {arr.dtype}; give an image of integer or float numbers")
    if arr.ndim == 2:
        arr = arr[..., None]
    elif not (arr.ndim == 3 and 1 <= arr.shape[-1] <= 4):
        raise InputError(
            f"{name} has shape {arr.shape}: not one 2-D image (a 3-D stack, a multi-page file or "
            "channels first?); give H x W (grey) or H x W x C with C = 1, 3 or 4 (channels last), "
            "each plane of a stack as its own image"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{name} has shape {arr.shape}: no pixels; give an image of at least 1 x 1 px")
    c = arr.shape[-1]
    return arr[..., :1] if c == 2 else arr[..., :3] if c == 4 else arr


def canonical_image(image: np.ndarray, name: str | Path = "image") -> np.ndarray:
    """An array as the canonical image (:func:`as_hwc`, then NaN and inf refused): what
    :func:`read_raw_image` gives for a file, for arrays from the Python API or napari."""
    arr = as_hwc(image, name)
    check_finite(arr, name)
    return arr


def to_grey(image: np.ndarray, dtype=np.float32) -> np.ndarray:
    """The channel mean of an ``H x W x C`` image as an ``H x W`` array of ``dtype`` (a grey
    ``H x W`` array is only cast). The one grey conversion.

    A sum of planes, then one division: 10x faster than ``image.mean(-1)`` on ``H x W x 3``,
    and the same numbers (the same additions in the same order).
    """
    image = np.asarray(image)
    if image.ndim == 2:
        return image.astype(dtype, copy=False)
    grey = image[..., 0].astype(dtype)
    for c in range(1, image.shape[-1]):
        grey += image[..., c]
    if image.shape[-1] > 1:
        grey /= image.shape[-1]
    return grey


def to_unit_float(arr: np.ndarray) -> np.ndarray:
    """Scale an integer or float array to float32 in [0, 1] (display; and the ``dtype_max``
    normalisation of checkpoints without a normalisation record).

    Integers are divided by their dtype's maximum; floats already in [0, 1] are kept, other
    floats are min-max scaled (in float64 where float32 would overflow or underflow).
    """
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        out = arr.astype(np.float32)
        out /= np.float32(np.iinfo(arr.dtype).max)  # in place: one pass, the same float32 values
        return out
    lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
    if lo >= 0.0 and hi <= 1.0:
        return arr.astype(np.float32)
    span = hi - lo
    if arr.dtype.itemsize <= 4 and 1e-12 <= span < 1e30 and max(abs(lo), abs(hi)) < 1e30:
        out = arr.astype(np.float32)
        return ((out - lo) / span).astype(np.float32)
    if not span > 0:  # a constant image
        return np.zeros(arr.shape, np.float32)
    x = arr.astype(np.float64)
    if span == np.inf:  # -1e308 to 1e308: halved (exactly) to stay finite
        x, lo, span = x / 2, lo / 2, hi / 2 - lo / 2
    return np.clip((x - lo) / span, 0, 1).astype(np.float32)


def image_meta(raw: np.ndarray, path: str | Path) -> dict:
    """Size, channels, dtype, bit depth and format of a canonical image read from ``path``."""
    return {
        "height": int(raw.shape[0]),
        "width": int(raw.shape[1]),
        "channels": int(raw.shape[2]),
        "dtype": str(raw.dtype),
        "bit_depth": 1 if raw.dtype == bool else raw.dtype.itemsize * 8,
        "format": Path(path).suffix.lower().lstrip("."),
    }


def read_raw_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Read an image file as the canonical array: ``H x W x C`` in the file's own dtype, C = 1
    or 3 (see the module docstring). What :func:`beadseg.core.normalization.model_input` makes
    a network's input from.

    PNG, TIFF (8/16/32-bit, float) and JPEG; every Pillow mode (palette, CMYK, 16-bit, ...).

    Parameters
    ----------
    path : path
    max_pixels : int, optional
        Refuse files with more pixels (see :func:`max_image_pixels`).

    Raises
    ------
    InputError
        Missing or unreadable file, too many pixels, a 3-D stack, NaN or inf pixels.
    """
    path = Path(path)
    return canonical_image(_read_raw(path, max_pixels), path)


def read_image(path: str | Path, max_pixels: int | None = None) -> np.ndarray:
    """Read an image for display: float32 ``H x W x C`` in [0, 1] (:func:`to_unit_float` of
    :func:`read_raw_image`). Not a network's input: that is
    :func:`beadseg.core.normalization.model_input` of the file (floats outside [0, 1] are
    min-max scaled here, which no model normalisation does).

    Raises
    ------
    InputError
        See :func:`read_raw_image`.
    """
    return to_unit_float(read_raw_image(path, max_pixels))


def to_channels(image: np.ndarray, channels: int, name: str = "image") -> np.ndarray:
    """Give an ``H x W x C`` image the channel count a model expects.

    Grey -> RGB repeats the channel; RGB -> grey averages (:func:`to_grey`). Other mismatches
    raise InputError.
    """
    c = image.shape[-1]
    if c == channels:
        return image
    if c == 1 and channels == 3:
        return np.repeat(image, 3, axis=-1)
    if c == 3 and channels == 1:
        return to_grey(image, image.dtype if image.dtype.kind == "f" else np.float32)[..., None]
    raise InputError(
        f"{name} has {c} channels but the model expects {channels}; give grey or RGB images (1 or 3 channels)"
    )


def _write_array(path: Path, arr: np.ndarray) -> Path:
    with atomic_path(path) as tmp:
        # fastest zlib level: a 4K mask/label/overlay is written in tens of ms, not seconds
        if path.suffix.lower() in _TIFF:
            import tifffile

            tifffile.imwrite(tmp, arr, compression="zlib", compressionargs={"level": 1})
        elif not _write_with_pillow(tmp, arr, path.suffix.lower()):
            import imageio.v3 as iio

            ext = path.suffix.lower()
            iio.imwrite(tmp, arr, extension=ext, **({"compress_level": 1} if ext == ".png" else {}))
    return path


def _write_with_pillow(tmp: Path, arr: np.ndarray, ext: str) -> bool:
    """PNG/JPEG by Pillow directly (what imageio calls underneath; predict then never imports
    imageio, ~80 ms); False for arrays Pillow cannot take as they are (imageio handles those)."""
    from PIL import Image

    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}.get(ext)
    if fmt is None:
        return False
    try:
        im = Image.fromarray(arr)
    except (TypeError, ValueError):
        return False
    im.save(tmp, format=fmt, **({"compress_level": 1} if fmt == "PNG" else {}))
    return True


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Write an image atomically; float images in [0, 1] are saved as 8-bit (16-bit for TIFF)."""
    path = Path(path)
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if np.issubdtype(arr.dtype, np.floating):
        if path.suffix.lower() in _TIFF:
            arr = np.round(np.clip(arr, 0, 1) * 65535).astype(np.uint16)
        else:
            arr = np.round(np.clip(arr, 0, 1) * 255).astype(np.uint8)
    return _write_array(path, arr)


def write_rgb_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an ``H x W x 3`` uint8 picture atomically as PNG, quickly: zlib level 1 with the
    run-length strategy (Z_RLE). On a noisy 4K overlay: 0.56 s and 13.5 MB vs 0.67 s and
    15.4 MB at level 1 with the default strategy (camera noise leaves little for the slower
    match search to find)."""
    from PIL import Image

    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(rgb, np.uint8)).save(tmp, format="PNG", compress_level=1, compress_type=3)
    return path


#: micrometres per resolution unit of a TIFF (ResolutionUnit tag, or ImageJ's ``unit``)
_UM_PER_UNIT = {"INCH": 25400.0, "CENTIMETER": 1e4, "MILLIMETER": 1e3, "MICROMETER": 1.0}


_UM_PER_IMAGEJ_UNIT = {"micron": 1.0, "microns": 1.0, "um": 1.0, "µm": 1.0, "\u03bcm": 1.0,
                       "\\u00b5m": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4}  # fmt: skip


# (ImageJ writes µ as the six characters \u00B5 in its description)
#: an inch resolution this coarse (>= 21 µm per pixel) is a print or screen setting (72, 300
#: dpi written by default by many programs), not a microscope's pixel size
_MIN_MICROSCOPE_DPI = 1200


def read_pixel_size_um(path: str | Path) -> float | None:
    """The pixel size (µm) a TIFF file states, else None (other formats, no or unitless
    resolution, or a print resolution in dots per inch).

    Read from XResolution/YResolution with ResolutionUnit (inch, centimetre) or, in ImageJ
    TIFFs (ResolutionUnit none), the ``unit`` of the ImageJ description (micron, um, nm, ...).

    Raises
    ------
    InputError
        The x and y resolutions differ (non-square pixels).
    """
    path = Path(path)
    if path.suffix.lower() not in _TIFF:
        return None
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages.first
            if "XResolution" not in page.tags:
                return None
            xres, yres = page.resolution
            unit = page.resolutionunit.name
            ij_unit = str((tif.imagej_metadata or {}).get("unit", "")).strip().lower()
    except (OSError, ValueError, tifffile.TiffFileError):
        return None  # read_image names what is wrong with the file
    um_per_unit = _UM_PER_UNIT.get(unit) if unit != "NONE" else _UM_PER_IMAGEJ_UNIT.get(ij_unit)
    if um_per_unit is None or xres <= 0 or yres <= 0:
        return None
    if unit == "INCH" and xres <= _MIN_MICROSCOPE_DPI:
        return None
    if abs(xres - yres) > 1e-3 * max(xres, yres):
        raise InputError(
            f"{path} has non-square pixels ({um_per_unit / xres:.4g} x {um_per_unit / yres:.4g} µm); "
            "give the pixel size with --pixel-size-um"
        )
    return float(f"{um_per_unit / xres:.6g}")  # the rational tags hold ~6-7 digits


def write_float_tiff(path: str | Path, arr: np.ndarray) -> Path:
    """Write a float32 array (e.g. probabilities) atomically as TIFF."""
    path = Path(path)
    with atomic_path(path) as tmp:
        import tifffile

        tifffile.imwrite(
            tmp, np.asarray(arr, dtype=np.float32), compression="zlib", compressionargs={"level": 1}
        )
    return path


def image_shape(path: str | Path) -> tuple[int, ...]:
    """An image file's shape (height, width[, channels]) from its header, without decoding its
    pixels (to size a run before it starts).

    Raises
    ------
    InputError
        The file is missing or not a readable PNG/TIFF/JPEG.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in _TIFF:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                return tuple(tif.pages.first.shape)
        from PIL import Image

        with Image.open(path) as im:
            return (im.height, im.width, len(im.getbands()))
    except Exception as exc:  # any decoder failure means the file is unusable
        raise InputError(f"cannot read the header of {path}: {type(exc).__name__}") from None
