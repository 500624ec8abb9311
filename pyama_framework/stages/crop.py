"""Stage 6: per-cell crops of every channel into ``cells.zarr`` (for viewing and export).

Crops are cut for the cells that made it into the traces, over one fixed window per cell:
the union of its bounding boxes over time plus ``cropping.padding``, clipped to the frame.
Values are float32 normalised to [0, 1] with the channel's percentile range; fluorescence
crops are background-corrected first. Features never read these crops (errata 6).

``cells.zarr/metadata``: ``cell_ids`` (N,) int32, ``bboxes`` (N, T, 4) int32 half-open
``[y0, x0, y1, x1)`` (-1 where the cell is absent), ``valid_frames`` (N, T) bool,
``windows`` (N, 4) int32, the crop window of each cell in frame coordinates.

Crops of one channel and level are one zarr array ``cells.zarr/<channel>/<level>`` of shape
``(N, T, H, W)``: row ``i`` holds cell ``cell_ids[i]``'s crop ``(T, h_i, w_i)`` in its top-left
corner (``h_i, w_i`` from ``windows``), zeros beyond; ``H, W`` are the largest window's.
Each cell is one chunk ``(1, T, H, W)``, so a viewer reads a cell in one request
(:func:`pyama_framework.cells.read_crop`), and chunks are grouped into shards of several
cells (zarr v3 sharding): a handful of files and two arrays per channel,
instead of two arrays and two files per cell and channel (measured at 2048², 500 cells,
T = 30: array creation and per-array writes were ~60 % of this stage). The zero padding
compresses to almost nothing.
Frames arrive one at a time, so crops are first streamed into a cell-major scratch file on
disk and then written a shard at a time: memory stays bounded whatever T.
"""

from __future__ import annotations

import os
from contextlib import closing

import numpy as np
import pandas as pd
import zarr

from ..location import scratch_file, zarr_store
from ..store import ARRAY_CONFIG, RECORDS_DIR, compressors, write_small_array
from .context import FovContext, background_name, raw_name
from .extract import traces_path
from .frames import FrameWriter, read_ahead
from .viewing import half, normalise, sample_frames, subsample, subsampled_range, to_uint8

STAGE = "crop"
SHARD_BYTES = 8 * 2**20  # uncompressed crops per shard: zarr holds ~3 copies of one while writing (peak RSS)


def _cell_table(ctx: FovContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with traces_path(ctx).open("rb") as handle:  # a local file or an object-store object
        table = pd.read_csv(handle, usecols=["cell", "frame", "bbox_y0", "bbox_x0", "bbox_y1", "bbox_x1"])
    cell_ids = np.unique(table["cell"].to_numpy()).astype(np.int32)
    n, t = len(cell_ids), ctx.n_frames
    bboxes = np.full((n, t, 4), -1, dtype=np.int32)
    valid = np.zeros((n, t), dtype=bool)
    rows = np.searchsorted(cell_ids, table["cell"].to_numpy())
    frames = table["frame"].to_numpy(dtype=np.int64)  # a header-only CSV reads as object dtype
    bboxes[rows, frames] = table[["bbox_y0", "bbox_x0", "bbox_y1", "bbox_x1"]].to_numpy()
    valid[rows, frames] = True
    return cell_ids, bboxes, valid


def _windows(bboxes: np.ndarray, valid: np.ndarray, padding: int, shape: tuple[int, int]) -> np.ndarray:
    big = np.iinfo(np.int32).max
    y0 = np.where(valid, bboxes[..., 0], big).min(axis=1) - padding
    x0 = np.where(valid, bboxes[..., 1], big).min(axis=1) - padding
    y1 = np.where(valid, bboxes[..., 2], -1).max(axis=1) + padding
    x1 = np.where(valid, bboxes[..., 3], -1).max(axis=1) + padding
    return np.stack([np.clip(y0, 0, shape[0]), np.clip(x0, 0, shape[1]),
                     np.clip(y1, 0, shape[0]), np.clip(x1, 0, shape[1])], axis=1).astype(np.int32)


def small_shape(h: int, w: int) -> tuple[int, int]:
    """Size of the /1 level of an ``h`` x ``w`` crop (2x smaller, at least 1 x 1)."""
    return max(h // 2, 1), max(w // 2, 1)


def _level_one(crop: np.ndarray) -> np.ndarray:
    return to_uint8(half(crop) if min(crop.shape[1:]) >= 2 else crop[:, :1, :1])


def run(ctx: FovContext) -> dict:
    cell_ids, bboxes, valid = _cell_table(ctx)
    windows = _windows(bboxes, valid, ctx.config.cropping.padding, ctx.frame_shape)
    root = zarr.open_group(zarr_store(ctx.store.cells_path), mode="w")
    meta = root.create_group("metadata")
    write_small_array(meta, "cell_ids", cell_ids)
    write_small_array(meta, "bboxes", bboxes)
    write_small_array(meta, "valid_frames", valid)
    write_small_array(meta, "windows", windows)
    if len(cell_ids) == 0:
        return {"cells": 0}

    n_cells, n_frames = len(cell_ids), ctx.n_frames
    heights, widths = windows[:, 2] - windows[:, 0], windows[:, 3] - windows[:, 1]
    frame_bytes = heights.astype(np.int64) * widths * 4  # one frame of one cell's crop
    offsets = np.concatenate([[0], np.cumsum(frame_bytes * n_frames)[:-1]])
    big_h, big_w = int(heights.max()), int(widths.max())
    small_h, small_w = small_shape(big_h, big_w)
    per_shard = int(np.clip(SHARD_BYTES // (n_frames * big_h * big_w * 4), 1, n_cells))
    weight = np.float32(ctx.config.extraction.background_weight)
    channels = [(c, False) for c in ([ctx.config.channels.pc.channel] if ctx.config.channels.pc else [])]
    channels += [(c.channel, True) for c in ctx.config.channels.fl]
    codecs = compressors(ctx.config.storage)
    scratch_path = scratch_file(ctx.store.root / RECORDS_DIR, "crops.scratch")  # always on a local disk
    done, total = 0, len(channels) * n_frames

    fd = os.open(scratch_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for channel, is_fl in channels:
            name = raw_name(ctx, channel)
            raw = ctx.store.frames(name)
            bg = ctx.store.frames(background_name(channel)) if is_fl and ctx.store.has_stack(background_name(channel)) else None

            samples = set(sample_frames(n_frames))
            sampled = []  # the frames of the percentile range, subsampled as they stream by
            # Pass 1: stream frames once; each cell's (not yet normalised) crop of frame t goes to
            # its place in the scratch file. Normalising the crops later gives the same bytes as
            # normalising the frame (elementwise), on a fraction of its pixels.
            def cut_frame(t: int, raw=raw, bg=bg) -> np.ndarray | None:  # on ctx.frame_threads threads
                frame = raw[t].astype(np.float32)
                if bg is not None:
                    frame -= weight * bg[t]
                for (y0, x0, y1, x1), offset, size in zip(windows, offsets, frame_bytes):
                    os.pwrite(fd, np.ascontiguousarray(frame[y0:y1, x0:x1]), int(offset + t * size))
                return subsample(frame) if t in samples else None

            with closing(read_ahead(cut_frame, n_frames, threads=ctx.frame_threads)) as frames:
                for small_frame in frames:
                    if small_frame is not None:
                        sampled.append(small_frame)
                    done += 1
                    ctx.tick(STAGE, done, total)
            lo, hi = subsampled_range(sampled)
            del sampled

            # Pass 2: one array per level, written a shard (several whole cells) at a time.
            full = root.create_array(f"{name}/0", shape=(n_cells, n_frames, big_h, big_w), dtype=np.float32,
                                     chunks=(1, n_frames, big_h, big_w), shards=(per_shard, n_frames, big_h, big_w),
                                     compressors=codecs, fill_value=0, config=ARRAY_CONFIG)
            small = root.create_array(f"{name}/1", shape=(n_cells, n_frames, small_h, small_w), dtype=np.uint8,
                                      chunks=(1, n_frames, small_h, small_w),
                                      shards=(per_shard, n_frames, small_h, small_w),
                                      compressors=codecs, fill_value=0, config=ARRAY_CONFIG)
            def store(first: int, blocks: tuple[np.ndarray, np.ndarray]) -> None:
                full[first:first + len(blocks[0])], small[first:first + len(blocks[1])] = blocks

            with FrameWriter(store) as writer:  # a shard is encoded while the next is cut
                for first in range(0, n_cells, per_shard):
                    last = min(first + per_shard, n_cells)
                    block = np.zeros((last - first, n_frames, big_h, big_w), np.float32)
                    block_small = np.zeros((last - first, n_frames, small_h, small_w), np.uint8)
                    for i in range(first, last):
                        h, w = int(heights[i]), int(widths[i])
                        crop = normalise(np.frombuffer(os.pread(fd, int(frame_bytes[i]) * n_frames, int(offsets[i])),
                                                       dtype=np.float32).reshape(n_frames, h, w), lo, hi)
                        block[i - first, :, :h, :w] = crop
                        level_one = _level_one(crop)
                        block_small[i - first, :, :level_one.shape[1], :level_one.shape[2]] = level_one
                    writer.put(first, (block, block_small))
    finally:
        os.close(fd)
        scratch_path.unlink(missing_ok=True)
    return {"cells": int(n_cells)}
