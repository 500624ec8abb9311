"""Storage codecs, presets and shards, and ``pyama storage bench`` on real files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import zarr
from pydantic import ValidationError

from typer.testing import CliRunner

from conftest import write_config
from pyama_framework.cli import app
from pyama_framework.config import StorageConfig
from pyama_framework.storage_bench import bench
from pyama_framework.storage_codecs import CODECS, PRESETS, parse_codec_spec
from pyama_framework.store import FovStore
from pyama_framework.testing.lightsheet_files import volume, write_isoview_tree


def test_presets_fill_keys_and_explicit_keys_win():
    assert StorageConfig().model_dump() == {"codec": "lz4", "level": 5, "preset": None, "frames_per_shard": 0}
    for name, settings in PRESETS.items():
        config = StorageConfig(preset=name)
        assert {k: getattr(config, k) for k in settings} == settings
    assert StorageConfig(preset="archive", level=4).level == 4
    with pytest.raises(ValidationError, match="'fast', 'balanced' or 'archive'"):
        StorageConfig(preset="tiny")


def test_codec_specs():
    assert parse_codec_spec("blosc-zstd-9") == ("zstd", 9)
    assert parse_codec_spec("lz4hc") == ("lz4hc", 5) and parse_codec_spec("bzip2") == ("bzip2", 9)
    assert parse_codec_spec("none") == ("none", 0)
    with pytest.raises(ValueError, match="unknown codec 'snappy-3'; choose one of: lz4, lz4hc"):
        parse_codec_spec("snappy-3")
    with pytest.raises(ValueError, match="level must be 0-9"):
        parse_codec_spec("zstd-12")


@pytest.mark.parametrize("codec", CODECS)
def test_every_codec_sharded_round_trips_through_the_store(tmp_path, codec):
    frames = volume(23, 64, 80, seed=1)
    store = FovStore(tmp_path, 0, StorageConfig(codec=codec, level=5, frames_per_shard=10))
    array = store.create_stack("pc_ch_0", frames.shape, frames.dtype)
    for t, frame in enumerate(frames):  # frame by frame, as the pipeline's stages write
        array[t] = frame
    back = zarr.open_array(store.images_path / "pc_ch_0" / "0", mode="r")
    assert back.shards == (10, 64, 80) and back.chunks == (1, 64, 80)
    assert np.array_equal(back[:], frames)
    shard_files = [p for p in (store.images_path / "pc_ch_0" / "0" / "c").rglob("*") if p.is_file()]
    assert len(shard_files) == 3  # 23 frames in 3 shards, not 23 chunk files


def test_bench_sizes_ratios_and_layouts(tmp_path):
    sample = volume(20, 96, 96, seed=2)
    rows = {r.method: r for r in bench(sample, ("zstd-5", "bzip2-9", "none"), frames_per_shard=10, folder=tmp_path)}
    assert set(rows) == {f"{m}-{layout}" for m in ("blosc-zstd-5", "bzip2-9", "none-0")
                         for layout in ("sharded", "no-shard")}
    raw_mb = sample.nbytes / 1e6
    assert rows["none-0-no-shard"].size_mb == pytest.approx(raw_mb, rel=0.02)
    assert rows["blosc-zstd-5-no-shard"].ratio > 1.5 and rows["bzip2-9-sharded"].ratio > 1.5
    assert all(r.write_gb_s > 0 and r.read_gb_s > 0 for r in rows.values())
    assert not any(tmp_path.iterdir())  # the scratch arrays are removed


def invoke(*args: str):
    """The CLI in this process (the readers are the built-in ones; no fresh discovery needed)."""
    return CliRunner().invoke(app, list(args))


def test_storage_bench_cli_on_a_stack_tree(tmp_path):
    root = write_isoview_tree(tmp_path / "d", {(0, 0, 0): volume(6, 48, 64, seed=3)})
    report = tmp_path / "bench.json"
    result = invoke("storage", "bench", str(root), "--codecs", "zstd-3,lz4-1", "--frames-per-shard", "3",
                    "--json", str(report), "--markdown")
    assert result.exit_code == 0, result.stderr
    assert "Z planes 0-5 of time point 0" in result.stderr and "| blosc-zstd-3-sharded | zstd | 3 |" in result.stdout
    rows = json.loads(report.read_text())["rows"]
    assert len(rows) == 4 and all(r["ratio"] > 1 for r in rows)
    bad = invoke("storage", "bench", str(root), "--codecs", "zstd-5,brotli")
    assert bad.exit_code == 2 and "unknown codec 'brotli'" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    missing = invoke("storage", "bench", str(tmp_path / "nope.nd2"))
    assert missing.exit_code == 2 and "file not found" in missing.stderr


@pytest.mark.slow
def test_sharded_run_gives_the_same_traces(tmp_path, two_fov_file):
    """Shards (frames written one by one into them) and another codec change no trace value."""
    traces = {}
    for name, storage in (("default", {}), ("sharded", {"preset": "balanced", "frames_per_shard": 4})):
        folder = tmp_path / name
        folder.mkdir()
        result = invoke("run", str(write_config(folder, two_fov_file, storage=storage, fovs=[0])))
        assert result.exit_code == 0, result.stderr
        traces[name] = pd.read_csv(folder / "out" / "fov_000" / "movie_fov_000_traces.csv")
        phase = zarr.open_array(folder / "out" / "fov_000" / "images.zarr" / "pc_ch_0" / "0", mode="r")
        assert phase.shards == ((4, *phase.shape[1:]) if name == "sharded" else None)
    pd.testing.assert_frame_equal(traces["default"], traces["sharded"])
