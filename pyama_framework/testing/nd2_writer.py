"""A small encoder for modern (v3) Nikon ND2 files, for tests.

No library writes ND2, so reader tests need their own encoder. This one writes the subset of
the format that the ``nd2`` library (and NIS-Elements files) use for uncompressed or
zlib-compressed time-lapses with positions, Z planes and channels:

* a file-signature chunk (``Ver3.0``),
* one ``ImageDataSeq|N!`` chunk per acquisition event ``N`` (an 8-byte timestamp followed by
  the pixels of every channel, interleaved as ``(Y, X, C)``), 4096-byte aligned so that the
  pixels start exactly 4096 bytes after the chunk, as readers expect,
* metadata chunks in the "CLX lite variant" binary encoding: ``ImageAttributesLV!`` (frame
  geometry), ``ImageMetadataSeqLV|0!`` (channels, pixel calibration), ``ImageMetadataLV!``
  (the experiment loops: time, XY positions, Z), ``ImageTextInfoLV!``,
* ``CustomData|AcqTimesCache!`` (per-event acquisition times in ms),
* the chunk map at the end of the file, closed by its signature and offset.

Plugin authors can use :func:`write_nd2` to make ND2 fixtures for their own tests::

    from pyama_framework.testing.nd2_writer import write_nd2
    write_nd2(tmp_path / "movie.nd2", data, channel_names=("BF", "GFP"))
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_nd2", "encode_clx_lite"]

CHUNK_MAGIC = 0x0ABECEDA
FILE_SIGNATURE = b"ND2 FILE SIGNATURE CHUNK NAME01!"
FILEMAP_SIGNATURE = b"ND2 FILEMAP SIGNATURE NAME 0001!"
CHUNKMAP_SIGNATURE = b"ND2 CHUNK MAP SIGNATURE 0000001!"
ALIGNMENT = 4096
# Readers locate a frame's pixels at chunk offset + 4096: a 16-byte chunk header, a
# 4072-byte name field and the 8-byte timestamp that precedes the pixels.
IMAGE_NAME_FIELD = 4072
CHUNK_HEADER = struct.Struct("<IIQ")

# CLX lite variant type codes
_BOOL, _INT32, _UINT32, _INT64, _UINT64, _DOUBLE, _STRING, _BYTES, _LEVEL = 1, 2, 3, 4, 5, 6, 8, 9, 11

# Experiment loop types (eType) and their axis letters
_LOOP_TYPE = {"T": 1, "P": 2, "Z": 4}


def encode_clx_lite(name: str, value: Any) -> bytes:
    """Encode ``value`` as one CLX-lite record called ``name``.

    Dicts become nested levels, lists become levels of unnamed items, ``bool``, ``int``,
    ``float``, ``str`` and ``bytes`` their scalar types.
    """
    header = bytes([0, len(name) + 1]) + (name + "\0").encode("utf-16-le")

    def record(kind: int, payload: bytes) -> bytes:
        return bytes([kind]) + header[1:] + payload

    if isinstance(value, bool):
        return record(_BOOL, struct.pack("<B", value))
    if isinstance(value, (int, np.integer)):
        value = int(value)
        if 0 <= value < 2**32:
            return record(_UINT32, struct.pack("<I", value))
        if -(2**31) <= value < 0:
            return record(_INT32, struct.pack("<i", value))
        return record(_INT64 if value < 0 else _UINT64, struct.pack("<q" if value < 0 else "<Q", value))
    if isinstance(value, (float, np.floating)):
        return record(_DOUBLE, struct.pack("<d", float(value)))
    if isinstance(value, str):
        return record(_STRING, (value + "\0").encode("utf-16-le"))
    if isinstance(value, (bytes, bytearray)):
        return record(_BYTES, struct.pack("<Q", len(value)) + bytes(value))
    if isinstance(value, (dict, list, tuple)):
        items = value.items() if isinstance(value, dict) else (("", v) for v in value)
        children = [encode_clx_lite(str(k), v) for k, v in items]
        body = b"".join(children)
        head = record(_LEVEL, b"")
        length = len(head) + 12 + len(body)  # measured from the record start to the item table
        offsets, pos = [], len(head) + 12
        for child in children:
            offsets.append(pos)
            pos += len(child)
        table = struct.pack(f"<{len(children)}Q", *offsets)
        return head + struct.pack("<IQ", len(children), length) + body + table
    raise TypeError(f"cannot encode {type(value).__name__} for {name!r}")


class _ChunkFile:
    """Appends ND2 chunks to a file and remembers where each one starts."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.chunkmap: list[tuple[bytes, int, int]] = []

    def pad_to_alignment(self) -> None:
        pos = self.fh.tell()
        if pos % ALIGNMENT:
            self.fh.write(b"\0" * (ALIGNMENT - pos % ALIGNMENT))

    def write(self, name: bytes, data: bytes | Sequence[bytes], name_field: int | None = None) -> int:
        parts = [data] if isinstance(data, (bytes, bytearray, memoryview)) else list(data)
        size = sum(len(p) for p in parts)
        if name_field is None:
            name_field = len(name) + (-len(name)) % 8
        offset = self.fh.tell()
        self.fh.write(CHUNK_HEADER.pack(CHUNK_MAGIC, name_field, size))
        self.fh.write(name.ljust(name_field, b"\0"))
        for part in parts:
            self.fh.write(part)
        self.chunkmap.append((name, offset, size))
        return offset


def _spectrum(wavelength_nm: float) -> dict:
    return {"uiCount": 1, "pPoint": {"Point0": {"eType": 1, "dWavelength": wavelength_nm, "dTValue": 1.0}}}


def _experiment(loops: list[tuple[str, int]], positions: list[dict], z_step_um: float,
                frame_interval_ms: float) -> dict | None:
    """The nested ``SLxExperiment`` record for ``loops`` (outermost first)."""
    level: dict | None = None
    for axis, count in reversed(loops):
        if axis == "T":
            pars = {"uiCount": count, "dStart": 0.0, "dPeriod": float(frame_interval_ms),
                    "dDuration": float(frame_interval_ms) * count, "dMinPeriodDiff": 0.0,
                    "dMaxPeriodDiff": 0.0, "dAvgPeriodDiff": float(frame_interval_ms)}
            entry: dict[str, Any] = {"eType": _LOOP_TYPE["T"], "uLoopPars": pars}
        elif axis == "P":
            pars = {"bUseZ": False, "bRelativeXY": False, "dReferenceX": 0.0, "dReferenceY": 0.0,
                    "uiCount": count, "Points": positions}
            entry = {"eType": _LOOP_TYPE["P"], "uLoopPars": pars, "pItemValid": bytes([1] * count)}
        else:
            pars = {"uiCount": count, "dZLow": 0.0, "dZHigh": z_step_um * (count - 1),
                    "dZStep": z_step_um, "dZHome": 0.0, "bZInverted": False, "iType": 0,
                    "wsZDevice": "Ti2 ZDrive"}
            entry = {"eType": _LOOP_TYPE["Z"], "uLoopPars": pars}
        entry["uiLoopType"] = entry["eType"]
        entry["wsApplicationDesc"] = ""
        if level is not None:
            entry["ppNextLevelEx"] = [level]
        level = entry
    return level


def write_nd2(
    path: str | Path,
    data: Any,
    channel_names: Sequence[str] | None = None,
    pixel_size_um: float | None = 0.65,
    frame_interval_ms: float = 60_000.0,
    *,
    loop_order: str = "TPZ",
    z_step_um: float = 1.0,
    position_names: Sequence[str] | None = None,
    rgb: bool = False,
    compress: bool = False,
) -> Path:
    """Write ``data`` as a modern (v3) ND2 file that the ``nd2`` library parses.

    Parameters
    ----------
    path : str or Path
        Output file.
    data : array-like
        ``(P, T, C, Y, X)`` or ``(P, T, Z, C, Y, X)`` of uint8, uint16 or float32. Anything
        with ``shape``, ``dtype`` and numpy indexing works (a ``np.memmap`` for big files):
        frames are pulled one acquisition event at a time, ``data[p, t, z]``.
    channel_names : sequence of str, optional
        One name per channel (default ``"Channel 0"``, ...).
    pixel_size_um : float or None
        Pixel calibration in micrometres; ``None`` writes an uncalibrated file.
    frame_interval_ms : float
        Period of the time loop. Event ``(p, t, z)`` is stamped
        ``t * frame_interval_ms + 10 * p + z`` milliseconds, so every FOV and plane has a
        distinct, predictable acquisition time.
    loop_order : str
        Nesting of the experiment loops, outermost first, a permutation of ``"TPZ"``
        (NIS-Elements writes ``"TPZ"``). Loops of size 1 are left out, as NIS does.
    z_step_um : float
        Z step written into the Z loop.
    position_names : sequence of str, optional
        Names of the XY positions.
    rgb : bool
        Write an RGB camera file: ``C`` must be 3 and holds the red, green and blue
        components of a single channel.
    compress : bool
        Store frames zlib-compressed (NIS "lossless" compression).

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    shape = tuple(int(s) for s in data.shape)
    if len(shape) == 5:
        n_pos, n_t, n_c, height, width = shape
        n_z = 1
    elif len(shape) == 6:
        n_pos, n_t, n_z, n_c, height, width = shape
    else:
        raise ValueError(f"data must be (P, T, C, Y, X) or (P, T, Z, C, Y, X), got shape {shape}")
    dtype = np.dtype(data.dtype)
    if dtype not in (np.dtype("uint8"), np.dtype("uint16"), np.dtype("float32")):
        raise ValueError(f"dtype must be uint8, uint16 or float32, got {dtype}")
    if sorted(loop_order) != ["P", "T", "Z"]:
        raise ValueError(f"loop_order must be a permutation of 'TPZ', got {loop_order!r}")
    if rgb and n_c != 3:
        raise ValueError("rgb=True needs exactly 3 components in the C axis")
    n_planes = 1 if rgb else n_c
    names = list(channel_names) if channel_names is not None else [f"Channel {i}" for i in range(n_planes)]
    if len(names) != n_planes:
        raise ValueError(f"{len(names)} channel names for {n_planes} channels")

    counts = {"T": n_t, "P": n_pos, "Z": n_z}
    loops = [(axis, counts[axis]) for axis in loop_order if counts[axis] > 1]
    bits = dtype.itemsize * 8
    width_bytes = width * n_c * dtype.itemsize

    # Acquisition events in file order: the last loop varies fastest.
    events = list(np.ndindex(*(count for _, count in loops))) if loops else [()]
    times_ms: list[float] = []
    with open(path, "wb") as fh:
        out = _ChunkFile(fh)
        fh.write(CHUNK_HEADER.pack(CHUNK_MAGIC, 32, 64))
        fh.write(FILE_SIGNATURE + b"Ver3.0".ljust(64, b"\0"))
        for seq, event in enumerate(events):
            index = {"T": 0, "P": 0, "Z": 0}
            index.update({axis: i for (axis, _), i in zip(loops, event)})
            p, t, z = index["P"], index["T"], index["Z"]
            time_ms = t * float(frame_interval_ms) + 10.0 * p + z
            times_ms.append(time_ms)
            planes = data[p, t, z] if len(shape) == 6 else data[p, t]  # (C, Y, X)
            pixels = np.ascontiguousarray(np.moveaxis(np.asarray(planes, dtype=dtype), 0, -1)).astype("<" + dtype.str[1:], copy=False)
            payload = pixels.tobytes()
            if compress:
                payload = zlib.compress(payload, 1)
            out.pad_to_alignment()
            out.write(f"ImageDataSeq|{seq}!".encode(), [struct.pack("<d", time_ms), payload],
                      name_field=IMAGE_NAME_FIELD)

        attributes = {"SLxImageAttributes": {
            "uiWidth": width, "uiWidthBytes": width_bytes, "uiHeight": height, "uiComp": n_c,
            "uiBpcInMemory": bits, "uiBpcSignificant": bits, "uiSequenceCount": len(events),
            "uiTileWidth": width, "uiTileHeight": height,
            "eCompression": 0 if compress else 2, "dCompressionParam": 0.0,
            "ePixelType": 3 if dtype.kind == "f" else 1, "uiVirtualComponents": n_c,
        }}
        planes_meta = {
            f"a{i}": {"uiCompCount": 3 if rgb else 1, "uiSampleIndex": i, "uiModalityMask": 0,
                      "sDescription": name, "uiColor": 0xFFFFFF,
                      # readers expect a probe record (its spectra give the wavelengths)
                      "pFluorescentProbe": {"m_sName": name,
                                            "m_ExcitationSpectrum": _spectrum(470.0 + 90 * i),
                                            "m_EmissionSpectrum": _spectrum(520.0 + 90 * i)}}
            for i, name in enumerate(names)
        }
        picture = {"SLxPictureMetadata": {
            "dTimeMSec": 0.0, "dTimeAbsolute": 2460000.5,
            "dCalibration": float(pixel_size_um or 0.0), "bCalibrated": pixel_size_um is not None,
            "dObjectiveMag": 20.0, "dObjectiveNA": 0.75, "wsObjectiveName": "Plan Apo 20x",
            "dXPos": 0.0, "dYPos": 0.0, "dZPos": 0.0, "ePictureXAxis": 0, "ePictureYAxis": 0,
            "sPicturePlanes": {"uiCount": n_planes, "uiCompCount": n_c, "sPlaneNew": planes_meta,
                               "sSampleSetting": {f"a{i}": {"dExposureTime": 100.0} for i in range(n_planes)}},
        }}
        points = [{"dPosX": 100.0 * i, "dPosY": 0.0, "dPosZ": 0.0, "dPFSOffset": -1.0,
                   "dPosName": position_names[i] if position_names else f"XY{i:02d}"}
                  for i in range(n_pos)]
        experiment = _experiment(loops, points, z_step_um, frame_interval_ms)
        text_info = {"SLxImageTextInfo": {"TextInfoItem_5": "written by pyama_framework.testing.nd2_writer"}}

        out.pad_to_alignment()
        out.write(b"ImageAttributesLV!", encode_clx_lite("SLxImageAttributes", attributes["SLxImageAttributes"]))
        out.write(b"ImageMetadataSeqLV|0!", encode_clx_lite("SLxPictureMetadata", picture["SLxPictureMetadata"]))
        if experiment is not None:
            out.write(b"ImageMetadataLV!", encode_clx_lite("SLxExperiment", experiment))
        out.write(b"ImageTextInfoLV!", encode_clx_lite("SLxImageTextInfo", text_info["SLxImageTextInfo"]))
        out.write(b"CustomData|AcqTimesCache!", np.asarray(times_ms, "<f8").tobytes())

        # The chunk map closes the file; its last 40 bytes (signature + own offset) are what
        # readers look for at the end of the file.
        out.pad_to_alignment()
        location = fh.tell()
        entries = b"".join(name + struct.pack("<QQ", offset, size) for name, offset, size in out.chunkmap)
        out.write(FILEMAP_SIGNATURE, [entries, CHUNKMAP_SIGNATURE, struct.pack("<Q", location)],
                  name_field=len(FILEMAP_SIGNATURE))
    return path
