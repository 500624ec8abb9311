"""Helpers shared by the built-in readers: channel/sample layout and file-size checks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pyama_framework.readers import ChannelInfo, file_error

SAMPLE_NAMES = ("R", "G", "B", "A")


def channel_layout(path: Path, names: Sequence[str], samples: int,
                   split_rgb: bool) -> tuple[tuple[ChannelInfo, ...], tuple[tuple[int, int], ...]]:
    """Channels as pyama sees them, and where each one is in the file.

    Parameters
    ----------
    path : Path
        The file, for error messages.
    names : sequence of str
        Names of the file's channels.
    samples : int
        Samples per pixel (1 for grayscale, 3 or 4 for RGB(A)).
    split_rgb : bool
        Read the samples of an RGB file as separate channels.

    Returns
    -------
    channels : tuple of ChannelInfo
    sources : tuple of (file channel, sample)
        ``sources[i]`` locates pyama channel ``i``.
    """
    if samples == 1:
        return (tuple(ChannelInfo(i, name) for i, name in enumerate(names)),
                tuple((i, 0) for i in range(len(names))))
    if not split_rgb:
        raise file_error(path, f"RGB image ({samples} samples per pixel), but pyama reads one grayscale "
                         "image per channel", "set 'reader_params: {split_rgb: true}' to read the samples "
                         "as channels 3*c+s (red, green, blue), then choose channels from those")
    channels, sources = [], []
    for c, name in enumerate(names):
        for s in range(samples):
            channels.append(ChannelInfo(len(channels), f"{name} {SAMPLE_NAMES[s]}"))
            sources.append((c, s))
    return tuple(channels), tuple(sources)


def check_within_file(path: Path, end: int, what: str) -> None:
    """Raise if data that should end at byte ``end`` lies beyond the end of the file."""
    size = path.stat().st_size
    if end > size:
        raise file_error(path, f"file is truncated: {what} ends at byte {end} but the file has "
                         f"{size} bytes", "copy the file again from the acquisition computer")
