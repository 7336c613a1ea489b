"""Images: a file -> one canonical array (``H x W x C`` in the file's own dtype, alpha dropped,
NaN refused), and arrays -> files.

The network's input is made from the canonical array by :mod:`beadseg.core.normalization`
alone; :func:`read_image` additionally scales to float32 in [0, 1] for display and overlays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import InputError
from .files import atomic_path

_TIFF = (".tif", ".tiff")


def _read_raw(path: Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist")
    try:
        if path.suffix.lower() in _TIFF:
            import tifffile

            return np.asarray(tifffile.imread(path))
        direct = _read_with_pillow(path)
        if direct is not None:
            return direct
        import imageio.v3 as iio

        return np.asarray(iio.imread(path))
    except InputError:
        raise
    except Exception as exc:  # any decoder failure means the file is unusable
        raise InputError(
            f"cannot read {path}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            " (is it a complete PNG/TIFF/JPEG file?)"
        ) from None


#: Pillow modes whose pixels numpy takes as they are (what imageio returns for them too)
_PLAIN_MODES = ("1", "L", "LA", "RGB", "RGBA", "I;16")


def _read_with_pillow(path: Path) -> np.ndarray | None:
    """A PNG/JPEG decoded by Pillow directly (what imageio does underneath, without its plugin
    machinery: 2.8 vs 3.2 ms per 512-px tile, and no import of every Pillow plugin); None for
    modes imageio converts (palette, CMYK, ...): those go through imageio as before."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode not in _PLAIN_MODES:
            return None
        return np.asarray(im)


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


def _to_hwc(arr: np.ndarray, path: Path) -> np.ndarray:
    """The image's ``H x W x C`` form (alpha dropped); non-finite values are refused here,
    where every image read passes."""
    check_finite(arr, path)
    if arr.ndim == 2:
        return arr[..., None]
    if arr.ndim == 3 and arr.shape[-1] in (1, 2, 3, 4):
        if arr.shape[-1] == 2:  # grey + alpha
            return arr[..., :1]
        if arr.shape[-1] == 4:  # RGBA: alpha dropped
            return arr[..., :3]
        return arr
    raise InputError(
        f"{path} has shape {arr.shape}: a 3-D stack or multi-page file, not a 2-D image; "
        "save each plane as its own 2-D image"
    )


def to_unit_float(arr: np.ndarray) -> np.ndarray:
    """Scale an integer or float array to float32 in [0, 1].

    Integers are divided by their dtype's maximum; floats already in [0, 1] are kept, other floats
    are min-max scaled.
    """
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        out = arr.astype(np.float32)
        out /= np.float32(np.iinfo(arr.dtype).max)  # in place: one pass, the same float32 values
        return out
    out = arr.astype(np.float32)
    lo, hi = float(np.nanmin(out)), float(np.nanmax(out))
    if lo >= 0.0 and hi <= 1.0:
        return out
    return ((out - lo) / max(hi - lo, 1e-12)).astype(np.float32)


def read_image_meta(path: str | Path) -> tuple[np.ndarray, dict]:
    """Read an image (see :func:`read_image`) and describe the file: size, channels, dtype,
    bit depth and format."""
    path = Path(path)
    raw = _to_hwc(_read_raw(path), path)
    meta = {
        "height": int(raw.shape[0]),
        "width": int(raw.shape[1]),
        "channels": int(raw.shape[2]),
        "dtype": str(raw.dtype),
        "bit_depth": 1 if raw.dtype == bool else raw.dtype.itemsize * 8,
        "format": path.suffix.lower().lstrip("."),
    }
    return to_unit_float(raw), meta


def read_raw_image(path: str | Path) -> np.ndarray:
    """Read an image as stored, ``H x W x C`` in its own dtype (alpha dropped), for
    :func:`beadseg.core.normalization.normalize_image`: models normalise by the image's own
    statistics, so the dtype's maximum must not be imposed first."""
    path = Path(path)
    return _to_hwc(_read_raw(path), path)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as float32 ``H x W x C`` in [0, 1].

    Grayscale gives C = 1, RGB C = 3; an alpha channel is dropped. PNG, TIFF (8/16-bit, float)
    and JPEG are read.

    Raises
    ------
    InputError
        Unreadable file or a 3-D stack.
    """
    return read_image_meta(path)[0]


def to_channels(image: np.ndarray, channels: int, name: str = "image") -> np.ndarray:
    """Give an ``H x W x C`` image the channel count a model expects.

    Grey -> RGB repeats the channel; RGB -> grey averages. Other mismatches raise InputError.
    """
    c = image.shape[-1]
    if c == channels:
        return image
    if c == 1 and channels == 3:
        return np.repeat(image, 3, axis=-1)
    if c == 3 and channels == 1:
        return image.mean(axis=-1, keepdims=True)
    raise InputError(f"{name} has {c} channels but the model expects {channels}")


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
