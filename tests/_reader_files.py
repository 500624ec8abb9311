"""Writers of small real microscopy files for the reader tests.

Every file is written by the format's own tooling (pylibCZIrw for CZI, tifffile for TIFF) or,
for ND2, by :func:`pyama_framework.testing.nd2_writer.write_nd2`, whose output the ``nd2``
library parses. The arrays use the reader's axis order ``(P, T, Z, C, Y, X)``.
"""

from __future__ import annotations

from pathlib import Path

import struct
import uuid

import numpy as np
import tifffile

from pyama_framework.testing.nd2_writer import write_nd2

CHANNELS = ("Phase", "GFP")
PIXEL_SIZE_UM = 0.65


def movie(n_fov: int = 3, n_t: int = 4, n_z: int = 1, n_c: int = 2, height: int = 24, width: int = 32,
          dtype: str = "uint16", seed: int = 0) -> np.ndarray:
    """Random pixels ``(P, T, Z, C, Y, X)``; every frame differs from every other."""
    rng = np.random.default_rng(seed)
    high = 255 if dtype == "uint8" else 60000
    return rng.integers(0, high, (n_fov, n_t, n_z, n_c, height, width)).astype(dtype)


def write_czi(path: Path, data: np.ndarray, channel_names=CHANNELS, pixel_size_um: float = PIXEL_SIZE_UM,
              compression: str | None = None, crop_last_scene: int = 0) -> Path:
    """Scenes ``P`` at different stage positions; ``crop_last_scene`` px off the last scene's width."""
    from pylibCZIrw import czi as pyczi

    n_fov, n_t, n_z, n_c = data.shape[:4]
    with pyczi.create_czi(str(path), exist_ok=True, compression_options=compression) as czi:
        for p in range(n_fov):
            for t in range(n_t):
                for z in range(n_z):
                    for c in range(n_c):
                        frame = data[p, t, z, c]
                        if crop_last_scene and p == n_fov - 1:
                            frame = frame[:, :-crop_last_scene]
                        czi.write(np.ascontiguousarray(frame), plane={"T": t, "Z": z, "C": c}, scene=p,
                                  location=(1000 * p, 500 * p))
        czi.write_metadata(channel_names=dict(enumerate(channel_names)),
                           scale_x=pixel_size_um * 1e-6, scale_y=pixel_size_um * 1e-6)  # CZI stores metres
    return path


def add_czi_timestamps(path: Path, times_s) -> Path:
    """Append a ZEN-style ``TimeStamps`` attachment (CZTIMS) to a CZI file written by libCZI,
    which writes none: an attachment segment, an attachment directory, and the header's
    pointer to that directory, laid out as the CZI specification (and czifile) define."""
    times = np.asarray(times_s, "<f8")
    content = struct.pack("<ii", 8 + times.nbytes, times.size) + times.tobytes()

    def segment(sid: bytes, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 32)
        return struct.pack("<16sqq", sid, len(body), len(body)) + body

    with open(path, "r+b") as fh:
        attachment_at = fh.seek(0, 2)
        attachment_at += fh.write(b"\0" * (-attachment_at % 32))
        entry = struct.pack("<2s10sqi16s8s80s", b"A1", b"", attachment_at, 0, b"\0" * 16, b"CZTIMS", b"TimeStamps")
        body = struct.pack("<i12x", len(content)) + entry + b"\0" * 112 + content
        fh.write(segment(b"ZISRAWATTACH", body))
        directory_at = fh.tell()
        fh.write(segment(b"ZISRAWATTDIR", struct.pack("<i252x", 1) + entry))
        fh.seek(32 + 72)  # FileHeaderSegment.AttachmentDirectoryPosition
        fh.write(struct.pack("<q", directory_at))
    return path


def write_ome_series(path: Path, data: np.ndarray, channel_names=CHANNELS, pixel_size_um: float = PIXEL_SIZE_UM,
                     interval_s: float = 60.0, compression: str | None = None) -> Path:
    """One OME Image (series) per FOV, TZCYX, with channel names, pixel size and plane DeltaT."""
    n_t, n_z, n_c = data.shape[1:4]
    with tifffile.TiffWriter(path, ome=True) as tif:
        for p, fov in enumerate(data):
            delta_t = [t * interval_s + p for t in range(n_t) for _ in range(n_z * n_c)]
            tif.write(fov, compression=compression, metadata={
                "axes": "TZCYX", "Channel": {"Name": list(channel_names)},
                "PhysicalSizeX": pixel_size_um, "PhysicalSizeY": pixel_size_um,
                "Plane": {"DeltaT": delta_t},  # seconds
            })
    return path


def write_ome_multifile(folder: Path, data: np.ndarray) -> Path:
    """A multi-file OME-TIFF of one FOV (``data[0]``, T x C planes): one file per time point;
    the first holds the OME-XML, whose TiffData elements point into the others by UUID."""
    n_t, n_z, n_c, height, width = data.shape[1:]
    ids = [uuid.uuid4().urn for _ in range(n_t)]
    names = [f"movie_t{t}.ome.tif" for t in range(n_t)]
    tiff_data = "".join(f'<TiffData FirstT="{t}" IFD="0" PlaneCount="{n_z * n_c}"><UUID FileName="{names[t]}">'
                        f"{ids[t]}</UUID></TiffData>" for t in range(n_t))
    ome = ('<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" '
           f'UUID="{ids[0]}"><Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYZCT" Type="{data.dtype}" '
           f'SizeX="{width}" SizeY="{height}" SizeZ="{n_z}" SizeC="{n_c}" SizeT="{n_t}">'
           + "".join(f'<Channel ID="Channel:0:{c}" Name="{CHANNELS[c]}"/>' for c in range(n_c))
           + f"{tiff_data}</Pixels></Image></OME>")
    for t in range(n_t):
        description = ome if t == 0 else (
            '<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06" '
            f'UUID="{ids[t]}"><BinaryOnly MetadataFile="{names[0]}" UUID="{ids[0]}"/></OME>')
        planes = data[0, t].transpose(1, 0, 2, 3).reshape(-1, height, width)  # XYZCT: Z fastest
        tifffile.imwrite(folder / names[t], planes, description=description, metadata=None, photometric="minisblack")
    return folder / names[0]


def write_ome_p_axis(path: Path, data: np.ndarray, pixel_size_um: float = PIXEL_SIZE_UM) -> Path:
    """A single OME Image whose positions are a P axis (PTCYX; tifffile stores P as an OME
    modulo dimension, and allows no Z next to it)."""
    if data.shape[2] != 1:
        raise ValueError("write_ome_p_axis writes files without Z")
    tifffile.imwrite(path, data[:, :, 0], metadata={"axes": "PTCYX", "PhysicalSizeX": pixel_size_um,
                                           "PhysicalSizeY": pixel_size_um})
    return path


def write_plain_stack(path: Path, data: np.ndarray) -> Path:
    """A multi-page TIFF with no metadata at all: pages in P, T, Z, C order."""
    tifffile.imwrite(path, data.reshape(-1, *data.shape[-2:]), metadata=None, photometric="minisblack")
    return path


def write_nd2_movie(path: Path, data: np.ndarray, **kwargs) -> Path:
    """``data`` (P, T, Z, C, Y, X) as ND2 with the standard test channel names."""
    kwargs.setdefault("channel_names", CHANNELS[: data.shape[3]])
    kwargs.setdefault("pixel_size_um", PIXEL_SIZE_UM)
    return write_nd2(path, data, **kwargs)


def all_frames_equal(reader, data: np.ndarray) -> bool:
    """Every (fov, t, z, channel) frame of ``reader`` equals ``data[fov, t, z, channel]``."""
    for index in np.ndindex(*data.shape[:4]):
        fov, t, z, c = index
        frame = reader.read_frame(fov, t, c, z)
        if frame.dtype != data.dtype or not np.array_equal(frame, data[index]):
            return False
    return True
