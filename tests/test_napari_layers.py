"""The napari plugin's logic (beadseg.integrations.napari.layers): runs without napari or Qt."""

import imageio.v3 as iio
import numpy as np
import pytest

from beadseg.core.errors import InputError
from beadseg.integrations.napari.layers import (
    bead_layers,
    image_from_array,
    is_prediction_folder,
    plane_index,
    prediction_layers,
)
from beadseg.integrations.napari.reader import get_reader


def test_image_from_array_is_the_canonical_image_of_a_file():
    # the plane as read_raw_image reads a file: own dtype, alpha dropped (the widget's network
    # input is then the one `beadseg predict` makes of the same pixels)
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 7
    out = image_from_array(rgba, rgb=True)
    assert out.shape == (4, 5, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() == [255, 0, 0]
    grey = image_from_array(np.full((4, 5), 32768, np.uint16), rgb=False)
    assert grey.shape == (4, 5, 1) and grey.dtype == np.uint16 and grey.max() == 32768
    with pytest.raises(InputError, match=r"shape \(3, 4, 5\)"):
        image_from_array(np.zeros((3, 4, 5)), rgb=False)  # a stack, not a plane
    with pytest.raises(InputError, match="NaN"):
        image_from_array(np.full((4, 5), np.nan, np.float32), rgb=False)


def test_plane_index_rounds_and_clips_the_leading_axes():
    assert plane_index((2.4, 9.0, 10.0, 11.0), (5, 3, 64, 64), 2) == (2, 2)
    assert plane_index((-1.0, 5.0, 5.0), (4, 64, 64), 1) == (0,)


def test_bead_layers_carry_the_table_and_sit_over_the_image():
    labels = np.zeros((10, 12), np.int32)
    labels[1:3, 1:3], labels[6:9, 7:10] = 1, 2
    beads = {"id": np.array([1, 2]), "centroid_x": np.array([1.5, 8.0]), "centroid_y": np.array([1.5, 7.0]),
             "area_px": np.array([4.0, 9.0]), "equivalent_diameter_px": np.array([6.0, 9.0])}  # fmt: skip
    (lab, lab_kw, lab_type), (pts, pts_kw, pts_type) = bead_layers(
        labels, beads, "tile", {"count": 2}, scale=(3, 0.5, 0.5), translate=(0, 10, 20)
    )
    assert (lab_type, pts_type) == ("labels", "points")
    assert lab_kw["name"] == "tile beads" and pts_kw["name"] == "tile centres"
    assert lab_kw["features"]["index"].tolist() == [1, 2]  # napari maps label value -> row by it
    assert pts.tolist() == [[1.5, 1.5], [7.0, 8.0]]  # (y, x): napari's axis order
    assert lab_kw["scale"] == (0.5, 0.5) and pts_kw["translate"] == (10, 20)  # the last two axes
    assert pts_kw["size"] == pytest.approx(2.5)  # a third of the median diameter
    empty = {k: np.zeros(0) for k in beads}
    assert bead_layers(np.zeros((4, 4), np.int32), empty, "e")[1][0].shape == (0, 2)


@pytest.fixture(scope="module")
def prediction_folder(tmp_path_factory):
    """A real `beadseg predict` output folder: two tiny synthetic tiles, one of them empty."""
    from beadseg.core.images import write_image
    from beadseg.data.synth import synth_image
    from beadseg.inference import predict_images

    root = tmp_path_factory.mktemp("pred")
    s = synth_image(96, n_beads=8, seed=3, cluster_fraction=0.0, min_gap_px=2.0)
    write_image(root / "images" / "a.png", s.image)
    write_image(root / "images" / "b.png", np.full((64, 80, 3), 120, np.uint8))  # no beads
    predict_images("default", [root / "images"], root / "out", progress=False)
    return root / "out"


def test_prediction_folder_opens_as_one_image_and_one_labels_layer_per_image(prediction_folder):
    assert is_prediction_folder(prediction_folder) and not is_prediction_folder(prediction_folder / "labels")
    layers = prediction_layers(prediction_folder)
    n_images = len(list((prediction_folder / "labels").glob("*.tif")))
    assert len(layers) <= 2 * n_images  # not three per image with the outlines drawn thrice
    assert [(kw["name"], t) for _, kw, t in layers] == [
        ("a", "image"), ("a beads", "labels"), ("b", "image"), ("b beads", "labels"),
    ]  # fmt: skip
    (img, img_kw, _), (lab, lab_kw, _) = layers[:2]
    # the image as predicted (not the overlay with its outlines drawn in)
    assert img.shape == (96, 96, 3) and img_kw["rgb"] and lab.shape == (96, 96)
    assert np.array_equal(img, iio.imread(prediction_folder.parent / "images" / "a.png"))
    count = int(lab.max())
    table = lab_kw["features"]
    assert lab_kw["metadata"]["count"] == count == len(table["area_px"]) == len(table["index"])
    # each centroid of the table lies inside the bead whose row it is
    ids = lab[np.round(table["centroid_y"]).astype(int), np.round(table["centroid_x"]).astype(int)]
    assert ids.tolist() == table["id"].tolist()
    assert [kw["visible"] for _, kw, _ in layers] == [True] * 2 + [False] * 2
    assert layers[3][1]["metadata"]["count"] == 0


def test_a_moved_image_is_replaced_by_the_overlay(prediction_folder, tmp_path):
    import shutil

    copy = tmp_path / "pred"
    shutil.copytree(prediction_folder, copy)
    for record in (copy / "records").glob("*.json"):
        record.write_text(record.read_text().replace(str(prediction_folder.parent), str(tmp_path / "gone")))
    layers = prediction_layers(copy)
    assert [(kw["name"], t) for _, kw, t in layers][:2] == [("a overlay", "image"), ("a beads", "labels")]
    assert layers[1][1]["opacity"] < 0.5  # the overlay has the outlines; the labels fainter
    assert len(layers) == 4


def test_reader_takes_prediction_folders_only(prediction_folder, tmp_path):
    assert get_reader(str(prediction_folder)) is not None
    assert get_reader([str(prediction_folder)]) is not None
    assert get_reader(str(tmp_path)) is None
    assert get_reader(str(prediction_folder / "counts.csv")) is None
    with pytest.raises(InputError, match="not a `beadseg predict` output folder"):
        prediction_layers(tmp_path)
