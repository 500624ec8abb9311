"""Real microscopy files end to end through ``pyama run`` (the CLI, in a fresh process).

- The DeLTA mother-machine TIFFs (bacteria, 2 positions x phase + fluorescence x 10 frames,
  520 x 696 uint16, 5 min apart), assembled into an OME-TIFF with tifffile exactly as a lab
  would export them.
- The DeLTA Nikon ND2 (phase only, 10 frames): one bacterium on an agar pad that divides
  once, between frames 5 and 6 (seen in the movie).

These movies have no ground-truth masks; the accuracy figures are measured on the annotated
movies elsewhere. Here the run must complete, carry the file's pixels and times
through, find the cells, and resume without redoing anything.
"""

from __future__ import annotations

import nd2
import numpy as np
import pandas as pd
import pytest
import tifffile
import yaml
import zarr

from conftest import pyama, write_config

TRENCH_ROWS = slice(80, 300)  # the growth trenches; the feeding channel below is cut to keep the test fast
N_POSITIONS, N_FRAMES = 2, 10


def real_frame(folder, position: int, channel: int, t: int) -> np.ndarray:
    return tifffile.imread(folder / f"Position{position + 1:02d}Channel{channel + 1:02d}Frames{t + 1:06d}.tif")


@pytest.fixture(scope="module")
def mother_machine(real_file, tmp_path_factory):
    """(OME-TIFF path, the real frames (P, T, C, Y, X), frame interval in s, pixel size in µm)."""
    folder = real_file("mothermachine")
    with tifffile.TiffFile(folder / "Position01Channel01Frames000001.tif") as tif:
        interval_s = float(tif.imagej_metadata["finterval"])  # ImageJ metadata of the real files
        pixel_um = 1.0 / tif.pages[0].get_resolution()[0]
    frames = np.stack([np.stack([np.stack([real_frame(folder, p, c, t)[TRENCH_ROWS] for c in (0, 1)])
                                 for t in range(N_FRAMES)]) for p in range(N_POSITIONS)])
    path = tmp_path_factory.mktemp("mothermachine") / "mothermachine.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as tif:
        for position in frames:  # one OME Image per position; only the frame interval, no per-plane times
            tif.write(position, photometric="minisblack", metadata={
                "axes": "TCYX", "Channel": {"Name": ["phase", "GFP"]},
                "PhysicalSizeX": pixel_um, "PhysicalSizeY": pixel_um,
                "TimeIncrement": interval_s, "TimeIncrementUnit": "s"})
    return path, frames, interval_s, pixel_um


def test_the_real_files_record_their_interval_and_pixel_size(tmp_path, real_file):
    """The TIFF reader takes the pixel size and the frame interval from the real ImageJ files;
    a Fiji-style hyperstack of them keeps ``finterval``, and its frame times follow from it."""
    from pyama_builtin.readers.tiff import TiffReader

    folder = real_file("mothermachine")
    with TiffReader(folder / "Position02Channel02Frames000004.tif") as reader:
        assert reader.metadata.pixel_size_um == pytest.approx(0.12966, abs=1e-5)
        assert reader.metadata.timestamps_s == ((0.0,),)
    with tifffile.TiffFile(folder / "Position02Channel02Frames000001.tif") as tif:
        interval_s = tif.imagej_metadata["finterval"]
    stack = np.stack([real_frame(folder, 1, 1, t) for t in range(N_FRAMES)])
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack, imagej=True, resolution=(1 / 0.12966, 1 / 0.12966),
                     metadata={"axes": "TYX", "unit": "micron", "finterval": interval_s})
    with TiffReader(path) as reader:
        times = reader.metadata.timestamps_s[0]
        np.testing.assert_array_equal(reader.read_frame(0, 7, 0), stack[7])
    assert len(times) == N_FRAMES and np.allclose(np.diff(times), 300.004, atol=1e-3)


def test_the_assembled_ome_tiff_reads_back_with_the_real_metadata(mother_machine):
    """OME ``TimeIncrement`` without per-plane ``DeltaT`` gives every FOV the times t * interval."""
    from pyama_builtin.readers.tiff import TiffReader

    path, frames, interval_s, pixel_um = mother_machine
    with TiffReader(path) as reader:
        meta = reader.metadata
        assert (meta.n_fovs, meta.n_frames, meta.n_channels) == (N_POSITIONS, N_FRAMES, 2)
        assert [c.name for c in meta.channels] == ["phase", "GFP"]
        assert meta.pixel_size_um == pytest.approx(pixel_um)
        assert meta.timestamps_s == (tuple(t * interval_s for t in range(N_FRAMES)),) * N_POSITIONS
        np.testing.assert_array_equal(reader.read_frame(1, 9, 1), frames[1, 9, 1])


@pytest.fixture(scope="module")
def mother_machine_run(mother_machine, tmp_path_factory):
    """One ``pyama run`` of the mother-machine OME-TIFF with the default algorithms:
    (CompletedProcess, config path, output folder)."""
    path = mother_machine[0]
    folder = tmp_path_factory.mktemp("mothermachine_run")
    config = write_config(folder, path, channels={
        "pc": {"channel": 0, "features": ["area"]},
        "fl": [{"channel": 1, "features": ["intensity_total", "intensity_mean"]}]},
        extraction={"min_frames": 5, "border_margin": 0})
    return pyama("run", str(config)), config, folder / "out"


def test_mother_machine_phase_and_fluorescence_end_to_end(mother_machine, mother_machine_run):
    _, frames, interval_s, _ = mother_machine
    result, _, out = mother_machine_run
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 of 2 FOV(s) complete" in result.stderr
    saved = yaml.safe_load((out / "processing_config.yaml").read_text())
    assert saved["reader"] == "tiff"

    for fov in range(N_POSITIONS):
        folder = out / f"fov_{fov:03d}"
        images = zarr.open_group(folder / "images.zarr", mode="r")
        # the stored stacks are the real files' pixels
        np.testing.assert_array_equal(images["pc_ch_0/0"][:], frames[fov, :, 0])
        np.testing.assert_array_equal(images["fl_ch_1/0"][:], frames[fov, :, 1])
        tracked = images["pc_ch_0/labels/seg_tracked_ch_0/0"][:]

        traces = pd.read_csv(folder / f"mothermachine_fov_{fov:03d}_traces.csv")
        assert len(traces) > 0, f"FOV {fov}: no cell kept"
        assert np.isfinite(traces.select_dtypes("number").to_numpy()).all() and (traces["area_ch_0"] > 0).all()
        # times come from the file's interval (5 min), not from the config's default of 10
        np.testing.assert_allclose(traces["time"], traces["frame"] * interval_s / 60, rtol=1e-9)
        # every kept row's bounding box holds its cell's pixels in the tracked masks
        for row in traces.itertuples():
            box = tracked[row.frame, row.bbox_y0:row.bbox_y1, row.bbox_x0:row.bbox_x1]
            assert (box == row.cell).sum() == row.area_ch_0

        lineage = pd.read_csv(folder / "tracks.csv")
        assert list(lineage.columns) == ["cell", "first_frame", "last_frame", "parent"]
        assert set(traces["cell"]) <= set(lineage["cell"])
        assert set(lineage["parent"]) - {0} <= set(lineage["cell"])
        assert {int(c) for c in np.unique(tracked)} - {0} == set(lineage["cell"])  # one row per track


def test_mother_machine_run_resumes_without_redoing_anything(mother_machine_run):
    result, config, out = mother_machine_run
    assert result.returncode == 0, result.stderr
    before = {p: p.read_bytes() for p in out.glob("fov_*/*.csv")}
    assert len(before) == 2 * N_POSITIONS  # traces and tracks of each FOV
    again = pyama("run", str(config))
    assert again.returncode == 0, again.stderr
    assert " done" not in again.stderr and again.stderr.count("already complete") >= 5 * N_POSITIONS, again.stderr
    assert {p: p.read_bytes() for p in out.glob("fov_*/*.csv")} == before


@pytest.mark.xfail(strict=True, reason="issue 7 section 3: the default logstd finds the trenches, not the cells "
                   "(hole filling fills each trench's wall contour; the cells are brighter than the PDMS, dark "
                   "only against the wall halos). The selectable tophat with cell_diameter 8 covers >= 50 % in "
                   "19 of 20 frames but keeps a trench's cells joined through the lumen (median object 773 px > "
                   "500) and reads the wrong polarity/width with its defaults (docs/algorithms.md, Segmenter tophat)")
def test_mother_machine_cells_are_found(mother_machine, mother_machine_run):
    """The fluorescence channel shows where the cells are (Otsu on each frame): the tracked
    phase masks must cover most of those pixels, with objects of a cell's size (rods of about
    1 x 2-4 µm: 8 x 15-30 px here), not of a 3000 px trench."""
    frames = mother_machine[1]
    out = mother_machine_run[2]
    from skimage.filters import threshold_otsu

    covered, areas = [], []
    for fov in range(N_POSITIONS):
        tracked = zarr.open_group(out / f"fov_{fov:03d}" / "images.zarr", mode="r")["pc_ch_0/labels/seg_tracked_ch_0/0"][:]
        for t in range(N_FRAMES):
            fluorescent = frames[fov, t, 1] > threshold_otsu(frames[fov, t, 1])
            covered.append((tracked[t][fluorescent] > 0).mean())
            hit = np.unique(tracked[t][fluorescent & (tracked[t] > 0)])
            areas.extend(int((tracked[t] == label).sum()) for label in hit)
    assert np.mean(np.array(covered) >= 0.5) >= 0.8, np.round(covered, 2)
    assert areas and 60 <= np.median(areas) <= 500, np.median(areas) if areas else areas


def _delta_nd2_run(tmp_path, real_file):
    """The DeLTA ND2 through ``pyama run`` (phase only): the file's frames and times, and the run's folder."""
    path = real_file("nd2_delta")
    with nd2.ND2File(path) as f:
        phase = f.asarray()  # (T, Y, X)
        times_s = np.array([f.frame_metadata(t).channels[0].time.relativeTimeMs for t in range(f.sizes["T"])]) / 1000
    config = write_config(tmp_path, path, channels={"pc": {"channel": 0, "features": ["area"]}, "fl": []})
    result = pyama("run", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    return phase, times_s, tmp_path / "out" / "fov_000"


# The cell in the middle of the field (about 0.13 µm/px: a rod of 1 x 2-5 µm is 8 x 15-40 px).
DELTA_CELL = (slice(250, 275), slice(330, 380))


def test_delta_nd2_phase_only_end_to_end(tmp_path, real_file):
    phase, times_s, folder = _delta_nd2_run(tmp_path, real_file)
    images = zarr.open_group(folder / "images.zarr", mode="r")
    np.testing.assert_array_equal(images["pc_ch_0/0"][:], phase)
    assert "fl_background_ch_1" not in images  # no fluorescence channel: no background stage

    traces = pd.read_csv(folder / "test_fov_000_traces.csv")
    assert np.isfinite(traces.select_dtypes("number").to_numpy()).all()
    # minutes since the first frame, from the ND2's own timestamps (frames ~5 min apart)
    frame_times = dict(zip(traces["frame"], traces["time"]))
    for frame, minutes in frame_times.items():
        assert minutes == pytest.approx((times_s[frame] - times_s[0]) / 60, abs=1e-6)

    # The cell is found in every frame with the area of a rod, not of debris or the field.
    tracked = images["pc_ch_0/labels/seg_tracked_ch_0/0"][:]
    assert all((tracked[t][DELTA_CELL] > 0).any() for t in range(len(phase)))
    lineage = pd.read_csv(folder / "tracks.csv")
    ids = [set(np.unique(tracked[t][DELTA_CELL])) - {0} for t in range(len(phase))]
    early = traces[traces["cell"].isin(set().union(*ids[:5])) & (traces["frame"] < 5)]
    area = early.groupby("frame")["area_ch_0"].sum()
    assert list(area.index) == [0, 1, 2, 3, 4] and ((area > 100) & (area < 2000)).all(), area
    # One cell, one track until it divides: no false division (the cell divides once).
    assert len(ids[0]) == 1
    here = set().union(*ids)
    assert (lineage[lineage["cell"].isin(here)]["parent"] != 0).sum() <= 2, lineage


@pytest.mark.xfail(strict=True, reason="issue 7 section 3: logstd keeps the constricted cell whole until frame 8 "
                                       "and re-merges the halves at frame 9, so the confirmed-division rule "
                                       "(daughters separate for 2 frames) sees no division at frames 5-6; "
                                       "tophat (cell_diameter 8) splits it at frame 5 only, re-merged at 6")
def test_delta_nd2_division_is_found(tmp_path, real_file):
    phase, _, folder = _delta_nd2_run(tmp_path, real_file)
    tracked = zarr.open_array(folder / "images.zarr" / "pc_ch_0" / "labels" / "seg_tracked_ch_0" / "0", mode="r")[:]
    lineage = pd.read_csv(folder / "tracks.csv")
    ids = [set(np.unique(tracked[t][DELTA_CELL])) - {0} for t in range(len(phase))]
    # It divides once, between frames 5 and 6 (frame 5 shows the constriction, so a split
    # there is right too): the track at the cell ends and two daughters start with it as parent.
    mother = next(iter(ids[0]))
    division = int(lineage.set_index("cell").loc[mother, "last_frame"]) + 1
    assert division in (5, 6), lineage
    daughters = lineage[(lineage["parent"] == mother) & (lineage["first_frame"] == division)]
    assert len(daughters) == 2, lineage
    assert all(ids[t] == {mother} for t in range(division)), ids
    assert all(ids[t] == set(daughters["cell"]) for t in range(division, len(phase))), (ids, lineage)
