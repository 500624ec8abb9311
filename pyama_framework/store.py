"""The output folder: zarr v3 arrays in the spec's layout, and atomic stage records.

Layout (spec "Output Structure")::

    <output>/processing_config.yaml
    <output>/fov_000/images.zarr/<channel>/0      (T, H, W), one chunk per frame
    <output>/fov_000/images.zarr/<channel>/1      (T, H/2, W/2) uint8 visualisation level
    <output>/fov_000/images.zarr/pc_ch_C/labels/seg_{labeled,tracked}_ch_C/{0,1}   (OME-NGFF labels)
    <output>/fov_000/cells.zarr/metadata/{cell_ids, bboxes, valid_frames}
    <output>/fov_000/cells.zarr/<channel>/{0,1}        (N, T, H, W): every cell's crop, a chunk per cell
    <output>/fov_000/<basename>_fov_000_traces.csv
    <output>/fov_000/.pyama/<stage>.json          completion records

A stage is complete only when its record exists and carries the fingerprint of the inputs
and parameters it was run with. Records are written last and atomically (write to a
temporary file, then ``os.replace``; on an object store, one PUT of its own), so a run
killed mid-stage leaves no record and the stage is redone from scratch on resume. Plugins never see this module.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
import zarr
from zarr.codecs import BloscCodec, GzipCodec

from .config import StorageConfig
from .location import ensure_dir, is_remote, output_root, remove_tree, zarr_store
from .storage_codecs import shard_shape

CONFIG_FILENAME = "processing_config.yaml"
RECORDS_DIR = ".pyama"


def fov_dirname(fov: int) -> str:
    return f"fov_{fov:03d}"


LABELS_GROUP = "labels"
# Bumped when arrays move inside a FOV: part of the copy stage's fingerprint, so a run made
# with an older layout is redone rather than resumed into a mix of both (2: NGFF labels).
STORE_LAYOUT = 2


def stack_key(name: str, level: int | str = 0) -> str:
    """Path of a stack level inside images.zarr. Label stacks (``seg_*_ch_C``) live in the
    OME-NGFF ``labels`` group of the phase image they segment, ``pc_ch_C/labels/<name>``;
    every other stack at ``<name>``."""
    if name.startswith("seg_") and "_ch_" in name:
        return f"pc_ch_{name.rsplit('_ch_', 1)[1]}/{LABELS_GROUP}/{name}/{level}"
    return f"{name}/{level}"


# Every array is written chunk by chunk in full; skipping zarr's "is this chunk empty?"
# scan saves ~16 ms per 2048 x 2048 frame (measured; a third of a write).
ARRAY_CONFIG = {"write_empty_chunks": True}


def compressors(storage: StorageConfig) -> tuple[Any, ...]:
    """zstd and lz4 run inside Blosc with byte shuffling: on 2048 x 2048 uint16 frames
    this is 2-3x faster than bare zstd at a better ratio (measured: bare zstd-3 encodes
    at ~50 MB/s, Blosc-lz4 at ~1 GB/s)."""
    if storage.codec == "zstd":
        return (BloscCodec(cname="zstd", clevel=min(storage.level, 9), shuffle="shuffle"),)
    if storage.codec == "lz4":
        return (BloscCodec(cname="lz4", clevel=min(max(storage.level, 1), 9), shuffle="shuffle"),)
    if storage.codec == "gzip":
        return (GzipCodec(level=min(storage.level, 9)),)
    if storage.codec in ("lz4hc", "bzip2"):
        from .storage_codecs import codec_chain

        return codec_chain(storage.codec, storage.level)
    return ()


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one."""
    if is_remote(path):  # an object store has no rename, but one PUT is atomic per object
        path.write_text(text)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FovStore:
    """The zarr groups, trace file and stage records of one FOV."""

    def __init__(self, output: Path, fov: int, storage: StorageConfig):
        self.fov = fov
        self.root = output_root(output) / fov_dirname(fov)  # a Path, or a UPath for an object store
        self.storage = storage
        self._compressors = compressors(storage)
        ensure_dir(self.root)

    # ------------------------------------------------------------------ arrays
    @property
    def images_path(self) -> Path:
        return self.root / "images.zarr"

    @property
    def cells_path(self) -> Path:
        return self.root / "cells.zarr"

    def images(self, mode: str = "a") -> zarr.Group:
        return zarr.open_group(zarr_store(self.images_path), mode=mode)

    def create_stack(self, name: str, shape: tuple[int, int, int], dtype: Any,
                     level: int = 0, chunks: tuple[int, ...] | None = None) -> zarr.Array:
        """Create (replacing any partial one) ``images.zarr/<name>/<level>``, a chunk per frame."""
        group = self.images()
        return group.create_array(
            stack_key(name, level), shape=shape, dtype=dtype,
            chunks=chunks or (1, *shape[1:]), compressors=self._compressors,
            shards=shard_shape(chunks or (1, *shape[1:]), self.storage.frames_per_shard),
            overwrite=True, fill_value=0, config=ARRAY_CONFIG,
            dimension_names=("t", "y", "x") if len(shape) == 3 else None,  # OME-NGFF axes
        )

    def frame_setter(self, array: zarr.Array) -> Callable[[int, np.ndarray], None]:
        """``set(t, frame)``: ``array[t] = frame`` for a stack made by :meth:`create_stack`,
        encoded and written by this process directly when :class:`FrameStack` could read it
        directly (the same codec object, so the same file bytes: tests/test_frame_stack.py);
        zarr's general path costs ~2.5 ms more CPU per 1024 x 1024 frame."""
        folder = _array_folder(array)
        encode = _direct_encoder(array, folder) if folder is not None else None
        if encode is None:
            return array.__setitem__
        dtype, shape = np.dtype(array.dtype), tuple(array.shape[1:])

        def set_frame(t: int, frame: np.ndarray) -> None:
            frame = np.ascontiguousarray(frame, dtype=dtype)
            if frame.shape != shape or not 0 <= t < array.shape[0]:
                array[t] = frame  # zarr's checks and messages
                return
            path = folder / array.metadata.encode_chunk_key((int(t), 0, 0))
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
            try:  # whole or not at all, as zarr writes a chunk
                with open(partial, "wb") as handle:
                    handle.write(encode(frame.reshape(-1).view(np.uint8)))
                os.replace(partial, path)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise

        return set_frame

    def stack(self, name: str, level: int = 0) -> zarr.Array:
        return zarr.open_array(zarr_store(self.images_path / stack_key(name, level), read_only=True), mode="r")

    def frames(self, name: str) -> "FrameStack":
        """``images.zarr/<name>/0`` for a stage that reads it frame by frame (:class:`FrameStack`)."""
        path = self.images_path / stack_key(name, 0)
        return FrameStack(zarr.open_array(zarr_store(path, read_only=True), mode="r"), path)

    def has_stack(self, name: str, level: int = 0) -> bool:
        return (self.images_path / stack_key(name, level) / "zarr.json").is_file()

    def stack_names(self) -> list[str]:
        if not self.images_path.is_dir():
            return []
        found = [p for p in self.images_path.iterdir() if (p / "0" / "zarr.json").is_file()]
        found += [p for p in self.images_path.glob(f"*/{LABELS_GROUP}/*") if (p / "0" / "zarr.json").is_file()]
        return sorted(p.name for p in found)

    def remove(self, relative: str) -> None:
        remove_tree(self.root / relative)

    # ----------------------------------------------------------------- records
    def _record_path(self, stage: str) -> Path:
        return self.root / RECORDS_DIR / f"{stage}.json"

    def is_done(self, stage: str, fingerprint: str) -> bool:
        record = self.record(stage)
        return record is not None and record.get("fingerprint") == fingerprint

    def record(self, stage: str) -> dict[str, Any] | None:
        path = self._record_path(stage)
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def mark_done(self, stage: str, fingerprint: str, **info: Any) -> None:
        atomic_write_text(self._record_path(stage), json.dumps({"fingerprint": fingerprint, **info}, indent=1))

    def clear_record(self, stage: str) -> None:
        self._record_path(stage).unlink(missing_ok=True)


def _array_folder(array: zarr.Array) -> Path | None:
    """The folder of a zarr array in a local store, or None."""
    root = getattr(array.store, "root", None)
    return Path(root) / array.path if isinstance(root, Path) else None


def _direct_encoder(array: zarr.Array, folder: Path) -> Callable[[np.ndarray], bytes] | None:
    """``frame bytes -> chunk bytes`` as zarr encodes a chunk of ``array``, or None."""
    codecs = _direct_codecs(array, folder)
    if codecs is None:
        return None
    if len(codecs) == 1:
        return lambda data: data.tobytes()
    blosc = getattr(codecs[1], "_blosc_codec", None)  # zarr's own numcodecs Blosc for this array
    return None if blosc is None else blosc.encode


class FrameStack:
    """A ``(T, H, W)`` stack whose ``stack[t]`` decodes frame ``t``'s chunk file directly when
    the layout allows it: a local output, one unsharded chunk per frame, Blosc or no
    compression (the defaults). The values are zarr's (the same bytes, decoded by the same
    Blosc); zarr's general path costs ~1.5 ms more CPU per 1024 x 1024 frame (its event-loop
    and codec threads, two more copies), and a run reads ~330 frames at 1024 x 1024 / T = 30.
    Anything else (other indices, a missing chunk, another layout) goes through zarr.
    ``shape``, ``dtype`` and ``attrs`` are the zarr array's; ``array`` is the array itself.
    """

    def __init__(self, array: zarr.Array, path: Any):
        self.array, self.shape, self.dtype, self.attrs = array, array.shape, array.dtype, array.attrs
        self._folder, self._decode = path, _direct_decoder(array, path)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        if self._decode is None or not isinstance(index, (int, np.integer)) or not 0 <= index < self.shape[0]:
            return self.array[index]
        try:
            with open(self._folder / self.array.metadata.encode_chunk_key((int(index), 0, 0)), "rb") as handle:
                data = handle.read()
        except FileNotFoundError:  # never written: zarr gives the fill value
            return self.array[index]
        return self._decode(data)


def _direct_codecs(array: zarr.Array, path: Any) -> list | None:
    """The codecs of ``array`` when its chunks may be read and written without zarr (a local
    stack, one unsharded chunk per frame, little-endian bytes, then Blosc or nothing), else None."""
    from zarr.codecs import BytesCodec

    meta = array.metadata
    if (is_remote(path) or meta.zarr_format != 3 or array.ndim != 3 or array.shards is not None
            or tuple(array.chunks) != (1, *array.shape[1:]) or np.dtype(array.dtype).kind not in "biuf"
            or sys.byteorder != "little"):
        return None
    codecs = list(meta.codecs)  # the bytes codec (little endian) first, then the compressors
    if not codecs or not isinstance(codecs[0], BytesCodec) or getattr(codecs[0].endian, "name", "little") != "little":
        return None
    if len(codecs) == 1 or (len(codecs) == 2 and isinstance(codecs[1], BloscCodec)):
        return codecs
    return None


def _direct_decoder(array: zarr.Array, path: Any) -> Any:
    """``bytes -> frame`` for :class:`FrameStack`'s direct reads, or None when zarr must read."""
    codecs = _direct_codecs(array, path)
    if codecs is None:
        return None
    dtype, shape = np.dtype(array.dtype), tuple(array.shape[1:])
    if len(codecs) == 1:
        return lambda data: np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    from numcodecs import Blosc

    blosc = Blosc()  # decoding reads the compressor and shuffle from each chunk's header

    def decode(data: bytes) -> np.ndarray:
        out = np.empty(shape, dtype)
        blosc.decode(data, out=out)
        return out

    return decode


def write_small_array(group: zarr.Group, name: str, data: np.ndarray) -> None:
    """Write a small whole array (metadata) in one chunk."""
    group.create_array(name, data=data, chunks=data.shape or None, overwrite=True)
