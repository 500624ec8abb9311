"""Each FOV's images.zarr is OME-NGFF 0.5: validated by ome-zarr-models, opened by ome-zarr's reader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr
from conftest import small_scene, write_config

from pyama_framework.config import load_config
from pyama_framework.omezarr import multiscale, time_step, write_fov_ome
from pyama_framework.runner import run_config
from pyama_framework.testing.synthetic import write_ome_tiff

Image = pytest.importorskip("ome_zarr_models.v05.image").Image
PIXEL_UM, FRAME_S = 0.4, 120.0


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("omezarr")
    movie = write_ome_tiff(folder / "movie.ome.tif", [small_scene(0)], pixel_size_um=PIXEL_UM,
                           frame_interval_s=FRAME_S)
    assert run_config(load_config(write_config(folder, movie))).ok
    return folder / "out" / "fov_000" / "images.zarr"


def test_every_stack_is_a_valid_ngff_image_with_physical_scales(images):
    for name in ("pc_ch_0", "fl_ch_1", "fl_background_ch_1"):
        image = Image.from_zarr(zarr.open_group(images / name, mode="r"))
        (level0, level1), = image.datasets
        assert [a.name for a in image.ome_attributes.multiscales[0].axes] == ["t", "y", "x"]
        assert level0.coordinateTransformations[0].scale == [FRAME_S / 60, PIXEL_UM, PIXEL_UM]
        assert level1.coordinateTransformations[0].scale == [FRAME_S / 60, 2 * PIXEL_UM, 2 * PIXEL_UM]
        assert level1.coordinateTransformations[1].translation == [0.0, PIXEL_UM / 2, PIXEL_UM / 2]
    pc = Image.from_zarr(zarr.open_group(images / "pc_ch_0", mode="r"))
    assert pc.labels.label_paths == ["seg_labeled_ch_0", "seg_tracked_ch_0"]
    source = json.loads((images / "pc_ch_0/labels/seg_tracked_ch_0/zarr.json").read_text())
    assert source["attributes"]["ome"]["image-label"]["source"] == {"image": "../../"}
    # The raw channels keep their path; the FOV facts are recorded for open_results.
    assert zarr.open_array(images / "fl_ch_1" / "0", mode="r").shape == (6, 128, 128)
    facts = zarr.open_group(images, mode="r").attrs["pyama"]
    assert facts["pixel_size_um"] == PIXEL_UM and facts["time_source"] == "file timestamps"
    np.testing.assert_allclose(facts["frame_times_min"], np.arange(6) * FRAME_S / 60)


def test_ome_zarr_reader_opens_image_and_labels(images):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Label, Multiscales, Reader

    nodes = list(Reader(parse_url(str(images / "pc_ch_0")))())
    image = next(n for n in nodes if any(isinstance(s, Multiscales) for s in n.specs)
                 and not any(isinstance(s, Label) for s in n.specs))
    labels = {n.metadata["name"]: n for n in nodes if any(isinstance(s, Label) for s in n.specs)}
    assert [d.shape for d in image.data] == [(6, 128, 128), (6, 64, 64)]
    assert sorted(labels) == ["seg_labeled_ch_0", "seg_tracked_ch_0"]
    tracked = np.asarray(labels["seg_tracked_ch_0"].data[0][2])
    stored = zarr.open_array(images / "pc_ch_0/labels/seg_tracked_ch_0/0", mode="r")[2]
    np.testing.assert_array_equal(tracked, stored)
    assert tracked.max() > 0


def test_without_viewing_levels_the_pyramid_has_one_level(images, tmp_path):
    """caching off: no /1 arrays, so image and labels each describe level 0 only (NGFF wants
    label pyramids as deep as their image's)."""
    copy = Path(shutil.copytree(images, tmp_path / "images.zarr"))
    for level1 in sorted(copy.glob("**/1"), key=lambda p: -len(p.parts)):
        shutil.rmtree(level1)
    write_fov_ome(copy, None, np.array([0.0, 7.0, 14.0]))
    image = Image.from_zarr(zarr.open_group(copy / "pc_ch_0", mode="r"))
    (level0,), = image.datasets
    assert level0.coordinateTransformations[0].scale == [7.0, 1.0, 1.0]
    assert "unit" not in image.ome_attributes.multiscales[0].axes[1].model_dump(exclude_none=True)


def test_time_step_and_scales():
    assert time_step(np.array([0.0, 10.0, 21.0, 30.0])) == 10.0
    assert time_step(np.array([0.0])) == 1.0
    entry = multiscale("x", [0, 1, 2], 1.0, 5.0)
    assert [d["coordinateTransformations"][0]["scale"][1] for d in entry["datasets"]] == [1.0, 2.0, 4.0]
    assert entry["datasets"][2]["coordinateTransformations"][1]["translation"] == [0.0, 1.5, 1.5]
