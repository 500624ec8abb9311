"""Storage codecs by name, the named presets, and shard shapes (a light module: no zarr import).

Codec names (``storage.codec``): ``lz4``, ``lz4hc``, ``zstd`` (all inside Blosc with byte
shuffle), ``gzip``, ``bzip2`` (numcodecs' BZ2 through zarr's numcodecs bridge: zarr-python
reads it, other zarr v3 implementations may not) and ``none``.

Presets were chosen from ``pyama storage bench`` runs on a light-sheet-like volume and two real
time-lapse movies (``docs/performance.md``, "Storage codecs and presets"):

- ``fast``: Blosc-lz4 level 5 (the default): the fastest writes and reads; level 1 was no
  faster within the noise and up to 8 % larger.
- ``balanced``: Blosc-zstd level 3: files 37-59 % smaller than lz4's, within 1-6 % of zstd-5's
  size at 1.5-4x its write speed.
- ``archive``: bzip2 level 9 (KLB's codec), 10 frames per shard: the smallest files or tied
  with zstd-9 (which writes 3-10x slower for nothing more), ten times fewer files. Reads are
  slow (a few MB/s) and need zarr-python with numcodecs; a shard is rewritten whenever one
  of its frames is written alone.
"""

from __future__ import annotations

from typing import Any

#: Storage settings of each preset; keys given explicitly next to ``preset`` win.
PRESETS: dict[str, dict[str, Any]] = {
    "fast": {"codec": "lz4", "level": 5, "frames_per_shard": 0},
    "balanced": {"codec": "zstd", "level": 3, "frames_per_shard": 0},
    "archive": {"codec": "bzip2", "level": 9, "frames_per_shard": 10},
}

CODECS = ("lz4", "lz4hc", "zstd", "gzip", "bzip2", "none")
_ALIASES = {"blosc-lz4": "lz4", "blosc-lz4hc": "lz4hc", "blosc-zstd": "zstd", "bz2": "bzip2", "zlib": "gzip"}


def apply_preset(data: Any) -> Any:
    """Fill a raw ``storage`` mapping from its ``preset`` (explicit keys win); other input unchanged."""
    if isinstance(data, dict) and data.get("preset") in PRESETS:
        return {**PRESETS[data["preset"]], **data}
    return data


def codec_chain(codec: str, level: int) -> tuple[Any, ...]:
    """The zarr v3 compressors for ``codec`` at ``level`` (``()`` for ``none``)."""
    from zarr.codecs import BloscCodec, GzipCodec

    if codec in ("zstd", "lz4", "lz4hc"):
        return (BloscCodec(cname=codec, clevel=min(max(level, 1 if codec != "zstd" else 0), 9), shuffle="shuffle"),)
    if codec == "gzip":
        return (GzipCodec(level=min(level, 9)),)
    if codec == "bzip2":
        import warnings

        from zarr.codecs.numcodecs import BZ2

        # zarr warns on every use that numcodecs codecs are outside the v3 spec; the user chose
        # bzip2 knowing that (this module's docstring, docs/config.md), so say it once, not per array
        warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr version 3 specification")
        return (BZ2(level=min(max(level, 1), 9)),)
    if codec == "none":
        return ()
    raise ValueError(f"unknown codec {codec!r}; choose one of: {', '.join(CODECS)}")


def parse_codec_spec(spec: str) -> tuple[str, int]:
    """``"zstd-5"``, ``"blosc-zstd-5"``, ``"bzip2"`` -> (codec, level); the level defaults to 5 (bzip2: 9)."""
    text = spec.strip().lower()
    name, _, level_text = text.rpartition("-")
    if not name or not level_text.isdigit():
        name, level_text = text, ""
    name = _ALIASES.get(name, name)
    if name not in CODECS:
        raise ValueError(f"unknown codec {spec!r}; choose one of: {', '.join(CODECS)} (optionally -LEVEL, e.g. zstd-5)")
    level = int(level_text) if level_text else (9 if name == "bzip2" else 0 if name == "none" else 5)
    if not 0 <= level <= 9:
        raise ValueError(f"codec {spec!r}: level must be 0-9")
    return name, level


def shard_shape(chunks: tuple[int, ...], frames_per_shard: int) -> tuple[int, ...] | None:
    """Shards of ``frames_per_shard`` chunks along the first axis, or None (unsharded)."""
    if frames_per_shard <= 1:
        return None
    return (chunks[0] * frames_per_shard, *chunks[1:])
