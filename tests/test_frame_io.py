"""Frame reads ahead and stores behind (stages/frames.py): order, bounded memory, failures."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from pyama_framework.stages.frames import FrameWriter, read_ahead


def test_read_ahead_yields_every_frame_in_order_and_reads_at_most_depth_ahead():
    started = []

    def read(t: int) -> int:
        started.append(t)
        return t * 10

    out, ahead = [], []
    for i, item in enumerate(read_ahead(read, 25, depth=2)):
        time.sleep(0.005)  # using the frame: every read that was asked for has started by now
        ahead.append(len(started) - (i + 1))
        out.append(item)
    assert out == [t * 10 for t in range(25)]
    assert max(ahead) == 2  # frames read beyond the one in use: `depth`, never more


def test_read_ahead_raises_the_readers_error_at_its_frame():
    def read(t: int) -> int:
        if t == 3:
            raise OSError("chunk 3 is corrupt")
        return t

    got = []
    with pytest.raises(OSError, match="chunk 3"):
        for item in read_ahead(read, 10):
            got.append(item)
    assert got == [0, 1, 2]


def test_closing_read_ahead_early_stops_reading():
    reads = []
    frames = read_ahead(lambda t: reads.append(t) or t, 100, depth=1)
    assert next(frames) == 0 and next(frames) == 1
    frames.close()
    seen = len(reads)
    time.sleep(0.05)
    assert len(reads) == seen <= 3


def test_frame_writer_stores_in_order_and_bounds_what_waits():
    stored, waiting, lock = [], [], threading.Lock()
    release = threading.Event()

    def store(t: int, frame: np.ndarray) -> None:
        release.wait()
        with lock:
            stored.append((t, int(frame[0])))

    writer = FrameWriter(store, depth=2)
    writer.put(0, np.array([0]))
    writer.put(1, np.array([1]))
    blocked = threading.Thread(target=writer.put, args=(2, np.array([2])))
    blocked.start()
    blocked.join(0.1)
    assert blocked.is_alive()  # a third frame waits until one of two is stored
    release.set()
    blocked.join(2)
    for t in range(3, 8):
        writer.put(t, np.array([t]))
    writer.close()
    assert stored == [(t, t) for t in range(8)]


def test_frame_writer_raises_a_failed_store_and_stores_nothing_after_a_failing_stage():
    stored = []

    def store(t: int, frame) -> None:
        if t == 2:
            raise OSError("disk full")
        time.sleep(0.01)
        stored.append(t)

    with pytest.raises(OSError, match="disk full"):
        with FrameWriter(store, depth=1) as writer:
            for t in range(10):
                writer.put(t, t)
    assert stored == [0, 1]

    stored.clear()
    with pytest.raises(KeyboardInterrupt):
        with FrameWriter(lambda t, f: (time.sleep(0.02), stored.append(t)), depth=3) as writer:
            for t in range(3):
                writer.put(t, t)
            raise KeyboardInterrupt
    after_exit = list(stored)
    time.sleep(0.1)
    assert stored == after_exit  # nothing is written once the stage has left


def test_frames_worked_on_at_once_give_the_same_bytes(tmp_path):
    """A FOV's frames segmented, estimated and measured on 3 threads at once give every
    output byte of the plain one-frame-at-a-time run (traces, lineage, every stack, crops)."""
    import json

    import zarr

    from pyama_framework.testing.synthetic import SyntheticScene, write_ome_tiff
    from conftest import pyama, write_config

    scene = SyntheticScene(height=256, width=256, n_frames=8, n_cells=30, n_fluorescence=1, seed=5)
    movie = write_ome_tiff(tmp_path / "movie.ome.tif", [scene])
    outputs = {}
    for threads in (1, 3):
        folder = tmp_path / f"threads{threads}"
        folder.mkdir()
        config = write_config(folder, movie, execution={"workers": 1, "frame_threads": threads},
                              channels={"pc": {"channel": 0, "features": ["area", "aspect_ratio"]},
                                        "fl": [{"channel": 1, "features": ["intensity_total", "intensity_mean"]}]})
        result = pyama("run", str(config))
        assert result.returncode == 0, result.stderr
        outputs[threads] = folder / "out" / "fov_000"
    one, three = outputs[1], outputs[3]
    for table in ("movie_fov_000_traces.csv", "tracks.csv"):
        assert (three / table).read_bytes() == (one / table).read_bytes(), table
    arrays = [p.parent.relative_to(one) for p in one.rglob("zarr.json")
              if json.loads(p.read_text()).get("node_type") == "array"]
    assert len(arrays) >= 14  # 5 stacks x 2 levels, crops of 2 channels x 2 levels, metadata
    for relative in arrays:
        a = zarr.open_array(one / relative, mode="r")[...]
        b = zarr.open_array(three / relative, mode="r")[...]
        assert a.dtype == b.dtype and np.array_equal(a, b), relative


def test_the_heap_is_tuned_also_where_dask_set_a_trim_threshold():
    """dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which makes glibc map
    and zero every frame buffer afresh; tune_heap sets thresholds that override it."""
    import platform
    import subprocess
    import sys

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("the heap settings are glibc's")
    code = "from pyama_framework.memory import tune_heap; print(tune_heap())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**__import__("os").environ, "MALLOC_TRIM_THRESHOLD_": "65536"})
    assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr
