"""Finding images (links, loops), pairing them with masks, and the one CSV reader."""

import os
import threading

import numpy as np
import pytest
from PIL import Image

from beadseg.core.errors import BeadsegWarning, InputError
from beadseg.core.files import csv_header, find_images, find_pairs, iter_csv_rows, read_csv_rows
from beadseg.core.masks import read_centres


def _png(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4), 100, np.uint8)).save(path)
    return path


def _finishes(fn, *args):
    """``fn(*args)`` run in a thread; fails (instead of hanging the suite) if it never returns."""
    out = {}
    worker = threading.Thread(target=lambda: out.setdefault("value", fn(*args)), daemon=True)
    worker.start()
    worker.join(120)  # a hang guard, not a speed test: the call takes milliseconds
    assert not worker.is_alive(), f"{fn.__name__}{args} did not return"
    return out["value"]


def test_a_folder_linked_into_itself_neither_hangs_nor_repeats(tmp_path):
    real = _png(tmp_path / "frames" / "day1" / "a.png")
    os.symlink(tmp_path / "frames", tmp_path / "frames" / "day1" / "loop")  # frames/day1/loop -> frames
    os.symlink("self.png", tmp_path / "frames" / "self.png")  # a link to itself
    found = _finishes(find_images, str(tmp_path / "frames" / "**" / "*.png"))
    assert [p.resolve() for p in found] == [real.resolve()]
    with pytest.warns(BeadsegWarning, match=r"self.png: a symbolic link that leads nowhere"):
        with pytest.raises(InputError, match="no images found"):
            find_images(tmp_path / "frames")  # the folder itself: day1/ is a folder, self.png skipped
    with pytest.raises(InputError, match="self.png is a symbolic link that leads nowhere"):
        find_images(tmp_path / "frames" / "self.png")


def test_linked_folders_are_still_searched_by_double_star(tmp_path):
    _png(tmp_path / "elsewhere" / "b.png")
    _png(tmp_path / "frames" / "a.png")
    os.symlink(tmp_path / "elsewhere", tmp_path / "frames" / "linked")
    found = find_images(str(tmp_path / "frames" / "**" / "*.png"))
    assert sorted(p.name for p in found) == ["a.png", "b.png"]


def test_folder_skips_broken_links_with_a_warning(tmp_path):
    _png(tmp_path / "images" / "a.png")
    os.symlink(tmp_path / "gone.png", tmp_path / "images" / "b.png")
    with pytest.warns(BeadsegWarning, match="b.png: a symbolic link that leads nowhere"):
        assert [p.name for p in find_images(tmp_path)] == ["a.png"]


def test_unpaired_images_and_masks_are_named_as_files(tmp_path):
    _png(tmp_path / "images" / "a.png")
    _png(tmp_path / "images" / "b.tif")
    _png(tmp_path / "masks" / "b.png")
    _png(tmp_path / "masks" / "c.jpg")
    with pytest.raises(InputError) as e:
        find_pairs(tmp_path)
    msg = str(e.value)
    assert "images without a mask in" in msg and ": a.png;" in msg
    assert "masks without an image in" in msg and ": c.jpg" in msg and "\n" not in msg


def test_csv_rows_and_their_errors_name_the_file(tmp_path):
    ok = tmp_path / "ok.csv"
    ok.write_bytes("\ufeffimage,count\na,3\nb,4\n".encode())  # Excel's byte-order mark
    assert read_csv_rows(ok, ("image", "count")) == [
        {"image": "a", "count": "3"},
        {"image": "b", "count": "4"},
    ]
    assert csv_header(ok) == ["image", "count"]
    assert [r["image"] for r in iter_csv_rows(ok)] == ["a", "b"]
    with pytest.raises(
        InputError, match=r"counts table .*ok.csv has no 'area_mp' column \(its columns: image, count\)"
    ):
        read_csv_rows(ok, ("image", "area_mp"), "counts table")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("x,y\n1,2\n3,4,5\n")
    with pytest.raises(InputError, match="ragged.csv line 3 has 3 fields but the header has 2; redo it"):
        read_csv_rows(ragged, fix="redo it")
    binary = tmp_path / "b.csv"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(InputError, match="b.csv is not UTF-8 text .*save the CSV table as UTF-8"):
        read_csv_rows(binary)
    with pytest.raises(InputError, match="nope.csv does not exist"):
        read_csv_rows(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    assert read_csv_rows(tmp_path / "empty.csv") == []
    with pytest.raises(InputError, match=r"empty.csv has no 'x' column \(its columns: none\)"):
        read_csv_rows(tmp_path / "empty.csv", ("x",))


def test_centres_table_errors_name_the_file_and_column(tmp_path):
    path = tmp_path / "centres.csv"
    path.write_text("x,z\n1,2\n")
    with pytest.raises(InputError, match="centres.csv has no 'y' column"):
        read_centres(path)
    path.write_text("x,y\n1.5,abc\n")
    with pytest.raises(InputError, match="centres.csv has a centre that is not a number"):
        read_centres(path)
    path.write_text("x,y\n1.5,2.5\n")
    np.testing.assert_array_equal(read_centres(path), [[2.5, 1.5]])
