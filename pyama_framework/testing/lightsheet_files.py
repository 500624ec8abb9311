"""Write light-sheet test inputs: KLB files and IsoView ``.stack`` + channel XML trees.

The KLB writer prefers ``pyklb`` (the Keller lab's C++ library) and otherwise writes the
format itself from the published layout (``docs/imageHeaderFormat.txt`` of
keller-lab-block-filetype: version byte, xyzct, pixel size, data type, compression,
256-byte metadata, block size, cumulative block end offsets; bzip2 blocks, x fastest). The
second writer shares no code with the reader's decoder, so a test comparing the two is a
real cross-check of the format, not of the decoder against itself.
"""

from __future__ import annotations

import bz2
import itertools
import math
import struct
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["volume", "lightsheet_plane", "write_klb", "write_klb_spec", "write_isoview_tree", "isoview_xml", "pyklb_available"]

_KLB_TYPES = ["uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64", "float32", "float64"]


def pyklb_available() -> bool:
    try:
        import pyklb  # noqa: F401
    except ImportError:
        return False
    return True


def volume(z: int, y: int, x: int, seed: int = 0, dtype: str = "uint16") -> np.ndarray:
    """A light-sheet-like (Z, Y, X) volume: dim background, a bright blob specimen, noise.

    Compresses like real data (smooth foreground, noisy background), not like zeros.
    """
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.meshgrid(np.linspace(-1, 1, z), np.linspace(-1, 1, y), np.linspace(-1, 1, x), indexing="ij")
    blob = np.exp(-((xx / 0.6) ** 2 + (yy / 0.4) ** 2 + (zz / 0.7) ** 2) * 3)
    texture = 1 + 0.3 * np.sin(xx * 23 + seed) * np.cos(yy * 17)
    signal = 100 + 1500 * blob * texture + rng.normal(0, 8, size=(z, y, x))
    return np.clip(signal, 0, np.iinfo(dtype).max if np.dtype(dtype).kind == "u" else None).astype(dtype)


def lightsheet_plane(z: int, n_z: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Plane ``z`` of a camera-like light-sheet volume, generated on its own (stream any size).

    A smooth elongated specimen (about a third of the field) with shot noise over an sCMOS
    background of 100 counts with read noise; no two planes or tiles repeat, so codecs see
    noise the way they do on camera frames. Tuned so that Blosc-zstd-5 compresses it about
    as the spec's real IsoView stack (2.4x), not as a synthetic image without noise (10x+).
    """
    rng = np.random.default_rng([seed, z])
    yy = np.linspace(-1, 1, height)[:, None]
    xx = np.linspace(-1, 1, width)[None, :]
    zc = (2 * z / max(n_z - 1, 1)) - 1
    body = np.exp(-((xx / 0.55) ** 2 + (yy / 0.3) ** 2 + (zc / 0.8) ** 2) * 2.5)
    texture = 1 + 0.4 * np.sin(xx * 40 + z * 0.3) * np.cos(yy * 31 - z * 0.2)
    signal = 1200 * body * texture
    counts = 100 + signal + rng.normal(0, 1, size=(height, width)) * np.sqrt(16 + 2.5 * signal)
    return np.clip(np.rint(counts), 0, 65535).astype(np.uint16)


def write_klb_spec(path: Path, data: np.ndarray, block_size_xyzct: Sequence[int] = (64, 64, 8, 1, 1),
                   pixel_size_tczyx: Sequence[float] = (1, 1, 1, 1, 1), compression: str = "bzip2",
                   metadata: bytes = b"") -> Path:
    """Write ``data`` ((t, c,) z, y, x) as KLB following the published layout, with Python's bz2."""
    path = Path(path)
    arr = np.ascontiguousarray(data)
    arr = arr.reshape((1,) * (5 - arr.ndim) + arr.shape)  # -> (t, c, z, y, x)
    xyzct = tuple(reversed(arr.shape))
    block = tuple(int(b) for b in block_size_xyzct)
    counts = [math.ceil(n / b) for n, b in zip(xyzct, block)]
    payloads = []
    for bt, bc, bz, by, bx in itertools.product(*(range(n) for n in reversed(counts))):  # x fastest
        sl = tuple(slice(i * b, (i + 1) * b) for i, b in zip((bt, bc, bz, by, bx), reversed(block)))
        raw = np.ascontiguousarray(arr[sl]).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        payloads.append({"bzip2": lambda r: bz2.compress(r, 9), "zlib": zlib.compress,
                         "none": lambda r: r}[compression](raw))
    ends = np.cumsum([len(p) for p in payloads], dtype=np.uint64)
    header = (struct.pack("<B5I5f", 2, *xyzct, *reversed([float(p) for p in pixel_size_tczyx]))
              + struct.pack("<BB", _KLB_TYPES.index(arr.dtype.name), ["none", "bzip2", "zlib"].index(compression))
              + metadata.ljust(256, b"\0")[:256] + struct.pack("<5I", *block) + ends.astype("<u8").tobytes())
    with open(path, "wb") as fh:
        fh.write(header)
        for payload in payloads:
            fh.write(payload)
    return path


def write_klb(path: Path, data: np.ndarray, block_size_xyzct: Sequence[int] = (64, 64, 8, 1, 1),
              pixel_size_tczyx: Sequence[float] = (1, 1, 1, 1, 1)) -> Path:
    """Write KLB with pyklb when installed (bzip2), else with :func:`write_klb_spec`."""
    if not pyklb_available():
        return write_klb_spec(path, data, block_size_xyzct, pixel_size_tczyx)
    import pyklb

    arr = np.ascontiguousarray(data)
    pyklb.writefull(arr, str(path), numthreads=1, pixelspacing_tczyx=list(pixel_size_tczyx)[-arr.ndim:],
                    blocksize_xyzct=np.asarray(block_size_xyzct, dtype=np.uint32), compression="bzip2")
    return Path(path)


def isoview_xml(dimensions: str, **attributes: str) -> str:
    """A channel XML in the acquisition software's style: one ``<info>`` per attribute."""
    items = {"dimensions": dimensions, **attributes}
    lines = [f'<info {k}="{v}"/>' for k, v in items.items()]
    return "<?xml version=\"1.0\"?>\n<push_config version=\"1.0\">\n" + "\n".join(lines) + "\n</push_config>\n"


def write_isoview_tree(root: Path, volumes: dict[tuple[int, int, int], np.ndarray], *,
                       z_step: float = 2.0, pixel_size: float = 0.406, t0: float = 1_700_000_000.0,
                       interval_s: float = 30.0, specimen: int = 0) -> Path:
    """Write ``root/TMttttt/ANG000/SPC00_TMttttt_ANG000_CMc_CHNnn_PH0.stack`` and ``TMttttt/chN.xml``.

    ``volumes[(t, camera, channel)]`` is a (Z, Y, X) uint16 array. Each channel's XML lists
    the cameras recorded in that channel (``camera_index``) with their ``XxYxZ`` and the
    time point's timestamp.
    """
    root = Path(root)
    for t in sorted({k[0] for k in volumes}):
        tm = root / f"TM{t:05d}"
        (tm / "ANG000").mkdir(parents=True, exist_ok=True)
        for chan in sorted({k[2] for k in volumes if k[0] == t}):
            cams = sorted(k[1] for k in volumes if k[0] == t and k[2] == chan)
            dims = ",".join("x".join(map(str, reversed(volumes[(t, c, chan)].shape))) for c in cams)
            (tm / f"ch{chan}.xml").write_text(isoview_xml(
                dims, camera_index=",".join(map(str, cams)), z_step=str(z_step), pixel_size=str(pixel_size),
                time_point=str(t), timestamp=str(t0 + t * interval_s), specimen_name="test", wavelength="488"))
            for cam in cams:
                name = f"SPC{specimen:02d}_TM{t:05d}_ANG000_CM{cam}_CHN{chan:02d}_PH0.stack"
                volumes[(t, cam, chan)].astype("<u2").tofile(tm / "ANG000" / name)
    return root
