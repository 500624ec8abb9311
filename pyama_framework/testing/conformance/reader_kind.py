"""Conformance suite of readers: ``check_reader(registration, sample_file)``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ...readers import ChannelInfo, ImageMetadata, Reader, ReaderError, open_reader
from ._support import ContractViolation, check_registration, fail, load, params_kwargs
from .discovery import check_light_discovery
from .end_to_end import check_end_to_end


def _check_metadata(registration: Any, meta: Any) -> None:
    if not isinstance(meta, ImageMetadata):
        fail(registration, f"metadata is a {type(meta).__name__}, expected pyama_framework.ImageMetadata")
    for what in ("n_fovs", "n_frames", "n_z", "height", "width"):
        if not isinstance(getattr(meta, what), int) or getattr(meta, what) < 1:
            fail(registration, f"metadata.{what} = {getattr(meta, what)!r}; expected an int >= 1")
    if not meta.channels or any(not isinstance(c, ChannelInfo) or c.index != i for i, c in enumerate(meta.channels)):
        fail(registration, f"metadata.channels = {meta.channels!r}; expected ChannelInfo(index=i, name) for "
                           f"i = 0, 1, ...")
    try:
        np.dtype(meta.dtype)
    except TypeError:
        fail(registration, f"metadata.dtype = {meta.dtype!r} is not a numpy dtype name")


def _check_frames(registration: Any, reader: Reader) -> None:
    meta = reader.metadata
    last = (meta.n_fovs - 1, meta.n_frames - 1, meta.n_channels - 1, meta.n_z - 1)
    for index in {(0, 0, 0, 0), last}:
        try:
            frame = reader.read_frame(*index)
        except Exception as exc:
            fail(registration, f"read_frame{index} raised {type(exc).__name__}: {exc}")
        if not isinstance(frame, np.ndarray) or frame.shape != (meta.height, meta.width):
            fail(registration, f"read_frame{index} returned {getattr(frame, 'shape', type(frame).__name__)}; "
                               f"expected ({meta.height}, {meta.width}) as the metadata says")
        if frame.dtype != np.dtype(meta.dtype):
            fail(registration, f"read_frame{index} returned dtype {frame.dtype}; metadata.dtype says {meta.dtype}")
        kept = frame.copy()
        if frame.flags.writeable:  # the framework may work in place on what it was given
            frame[...] = 0 if kept.dtype.kind != "b" else False
        again = reader.read_frame(*index)
        if not np.array_equal(kept, again):
            fail(registration, f"read_frame{index} gave different pixels on a second read (or returned a "
                               f"buffer it reuses); return a fresh array with the same pixels every time")


def _damaged_copies(sample: Path, folder: Path) -> dict[str, Path]:
    """A copy cut to half its size and a file of random bytes, both with the sample's suffixes."""
    suffix = "".join(sample.suffixes) or sample.suffix
    truncated, garbage = folder / f"truncated{suffix}", folder / f"garbage{suffix}"
    data = sample.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, max(4096, len(data) // 8), np.uint8).tobytes())
    return {"truncated": truncated, "garbage": garbage}


def _check_damaged(registration: Any, reader_cls: type, kwargs: dict, damage: str, path: Path) -> None:
    """A damaged file is refused by ``check`` or raises a one-line ReaderError naming it."""
    try:
        verdict = reader_cls.check(path)
    except Exception as exc:
        fail(registration, f"check() raised {type(exc).__name__} on a {damage} file; return a short reason "
                           f"string for files it cannot open")
    if verdict is not None:
        if not isinstance(verdict, str) or "\n" in verdict:
            fail(registration, f"check() on a {damage} file returned {verdict!r}; return None or a one-line reason")
        return
    try:
        with reader_cls(path, **kwargs) as reader:
            meta = reader.metadata
            for fov in range(meta.n_fovs):
                for t in range(meta.n_frames):
                    for c in range(meta.n_channels):
                        for z in range(meta.n_z):
                            reader.read_frame(fov, t, c, z)
    except ReaderError as exc:
        message = str(exc)
        if path.name not in message:
            fail(registration, f"the ReaderError for a {damage} file does not name the file: {message!r}; "
                               f"use pyama_framework.readers.file_error(path, problem, fix)")
        return
    except ContractViolation:
        raise
    except Exception as exc:
        fail(registration, f"raised {type(exc).__name__} on a {damage} file instead of a one-line ReaderError "
                           f"({' '.join(str(exc).split())[:120]}); wrap library errors with "
                           f"pyama_framework.readers.file_error(path, problem, fix)")
    fail(registration, f"opened a {damage} file and read every frame without an error; __init__ must detect "
                       f"files that do not hold what their header says")


def check_reader(registration: Any, sample_file: str | Path, *, params: dict | None = None,
                 plugin_module: str | None = None, end_to_end: bool = True, tmp_path: Path | None = None) -> None:
    """Check a :class:`~pyama_framework.ReaderRegistration` on ``sample_file``.

    Parameters
    ----------
    registration : ReaderRegistration
    sample_file : str or Path
        A small file the reader opens (e.g. the ``pyama_ome_tiff`` fixture, or a real file).
    params, plugin_module, end_to_end, tmp_path
        As :func:`~pyama_framework.testing.conformance.check_segmenter`; the end-to-end run
        processes FOV 0 of ``sample_file`` with this reader.

    Raises
    ------
    ContractViolation
        Naming the broken rule: suffixes, ``check``, metadata, frame shape or dtype, repeat
        reads, errors on a truncated or garbage copy, heavy import, params, end-to-end run.
    """
    sample = Path(sample_file)
    check_registration(registration, "reader")
    check_light_discovery(registration, plugin_module)
    reader_cls = load(registration, registration.load, registration.implementation)
    if not (isinstance(reader_cls, type) and issubclass(reader_cls, Reader)):
        fail(registration, f"implementation is {reader_cls!r}; it must be a subclass of pyama_framework.Reader")
    kwargs = params_kwargs(registration, params)
    name = sample.name.lower()
    if registration.suffixes and not any(name.endswith(s) for s in registration.suffixes):
        fail(registration, f"claims suffixes {registration.suffixes} but the sample is {sample.name}; "
                           f"add its suffix or give a matching sample")
    verdict = reader_cls.check(sample)
    if verdict is not None:
        fail(registration, f"check() refuses the sample {sample.name}: {verdict}")
    try:
        with open_reader(sample, registration, params) as reader:
            _check_metadata(registration, reader.metadata)
            _check_frames(registration, reader)
            meta = reader.metadata
    except ReaderError as exc:
        fail(registration, f"cannot read the sample: {exc}")
    with tempfile.TemporaryDirectory(prefix="pyama-reader-check-") as scratch:
        for damage, path in _damaged_copies(sample, Path(scratch)).items():
            _check_damaged(registration, reader_cls, kwargs, damage, path)
    if end_to_end:
        channels = {"pc": {"channel": 0, "features": ["area"]},
                    "fl": [{"channel": 1, "features": ["intensity_total"]}] if meta.n_channels > 1 else []}
        check_end_to_end(registration, None, tmp_path, input_path=sample, reader=registration.name,
                         reader_params=params or {}, channels=channels)
