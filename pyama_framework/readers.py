"""The reader contract and deterministic reader selection.

A reader plugin registers a :class:`~pyama_framework.types.ReaderRegistration` whose
implementation is a subclass of :class:`Reader`. The framework opens the file once per worker
and pulls frames one at a time, so copying a file never needs the file's size in memory.

Selection (bioio style): an explicit reader name wins; otherwise the readers claiming the
most specific matching suffix (``.ome.tif`` before ``.tif``) are candidates, each runs its
cheap content check, and exactly one must accept. :func:`feasibility_report` gives every
reader's verdict with its reason (``pyama plugins doctor FILE``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .errors import PyamaError
from .types import PluginParams

if TYPE_CHECKING:
    from .registry import Registry
    from .types import ReaderRegistration


class ReaderError(PyamaError):
    """A file cannot be opened or read; the message names the file and the problem.

    Messages are one line, ``"<path>: <problem>; <fix>"``; line breaks in library error
    texts are folded so that the CLI prints exactly one line.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def file_error(path: Path | str, problem: str, fix: str = "") -> ReaderError:
    """A :class:`ReaderError` reading ``"<path>: <problem>; <fix>"``."""
    return ReaderError(f"{path}: {problem}" + (f"; {fix}" if fix else ""))


def describe_exception(exc: BaseException, limit: int = 160) -> str:
    """``"TypeName: message"`` of a library exception, shortened to ``limit`` characters,
    for embedding in a one-line error."""
    text = " ".join(str(exc).split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_head(path: Path, size: int) -> bytes:
    """The first ``size`` bytes of ``path`` (fewer if the file is shorter); for ``check``."""
    with open(path, "rb") as fh:
        return fh.read(size)


@dataclass(frozen=True)
class ChannelInfo:
    """One channel of a file: its index (what the config refers to) and its name."""

    index: int
    name: str


@dataclass(frozen=True)
class ImageMetadata:
    """What a reader knows about a file before any pixel is read.

    Attributes
    ----------
    n_fovs, n_frames, n_z : int
        Number of fields of view (positions/scenes/series), time points and Z planes.
    channels : tuple of ChannelInfo
        Channels in index order.
    height, width : int
        Frame shape in pixels (the same for every FOV, frame and channel).
    dtype : str
        NumPy dtype name of a frame as returned by :meth:`Reader.read_frame`.
    pixel_size_um : float or None
        Physical pixel size (micrometres) when the file records it.
    timestamps_s : tuple of tuple of float, or None
        ``timestamps_s[fov][t]``: acquisition time of frame ``t`` in seconds from the start
        of the acquisition, when the file records it.
    """

    n_fovs: int
    n_frames: int
    channels: tuple[ChannelInfo, ...]
    height: int
    width: int
    dtype: str
    n_z: int = 1
    pixel_size_um: float | None = None
    timestamps_s: tuple[tuple[float, ...], ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Z spacing in micrometres (volumes), when the file records it.
    z_step_um: float | None = None

    @property
    def n_channels(self) -> int:
        return len(self.channels)


class Reader:
    """Base class of reader implementations.

    Subclasses implement :meth:`check`, :meth:`__init__` (open the file lazily and fill
    :attr:`metadata`), :meth:`read_frame` and :meth:`close`. Readers are used as context
    managers. Errors are raised as :class:`ReaderError` with a one-line message naming the
    file and the problem.

    ``__init__`` must find every problem it can without reading pixels (truncated file,
    frames of different shapes, RGB data without a channel choice), so that a run fails
    before any output is written. ``read_frame`` reads one frame and never more than a
    few frames' worth of memory. Z planes are exposed as ``metadata.n_z`` and the ``z``
    argument; choosing a plane or a projection is the framework's job.

    Only the reader touches the input file; it never writes anything.
    """

    #: Version of the library the reader wraps, for ``processing_config.yaml``.
    library: ClassVar[str] = ""

    path: Path
    metadata: ImageMetadata

    @classmethod
    def check(cls, path: Path) -> str | None:
        """Cheap content check (magic bytes, a header). Return ``None`` if this reader can
        open ``path``, otherwise a short reason why not. Must not load pixel data."""
        raise NotImplementedError

    def __init__(self, path: Path, **params: Any) -> None:
        raise NotImplementedError

    def read_frame(self, fov: int, t: int, channel: int, z: int = 0) -> np.ndarray:
        """Return one (H, W) frame. Indices are validated by the framework beforehand.

        The framework may store the array on another thread after the next call, so return
        an array the reader will not change later (not a reused buffer)."""
        raise NotImplementedError

    def read_planes(self, fov: int, t: int, channel: int, z_start: int, z_stop: int) -> np.ndarray:
        """Return Z planes ``z_start:z_stop`` as one (n, H, W) array. Volume readers override
        this to read a slab in one go; the default stacks :meth:`read_frame` calls."""
        return np.stack([self.read_frame(fov, t, channel, z) for z in range(z_start, z_stop)])

    def close(self) -> None:
        """Release file handles."""

    def check_indices(self, fov: int, t: int, channel: int, z: int = 0) -> None:
        """Raise a one-line :class:`ReaderError` if an index is outside the file."""
        meta = self.metadata
        for what, index, count in (("FOV", fov, meta.n_fovs), ("frame", t, meta.n_frames),
                                   ("channel", channel, meta.n_channels), ("Z plane", z, meta.n_z)):
            if not 0 <= index < count:
                raise file_error(self.path, f"{what} index {index} is out of range (the file has {count})",
                                 f"use an index from 0 to {count - 1}")

    @classmethod
    def library_version(cls) -> str:
        """``"name version"`` of the library this reader wraps (empty if none)."""
        return cls.library

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Pseudo-suffix a reader claims to open folder datasets (e.g. IsoView ``TMxxxxx/`` trees).
FOLDER_SUFFIX = "/"


def _suffix_rank(path: Path, suffixes: tuple[str, ...]) -> int:
    """Length of the longest of ``suffixes`` that ``path`` ends with (0 = no match)."""
    if path.is_dir():
        return 1 if FOLDER_SUFFIX in suffixes else 0
    name = path.name.lower()
    return max((len(s) for s in suffixes if name.endswith(s.lower())), default=0)


@dataclass(frozen=True)
class ReaderVerdict:
    """One reader's answer for one file (a row of ``pyama plugins doctor``)."""

    name: str
    accepted: bool
    reason: str


def _check(registration: "ReaderRegistration", path: Path) -> str | None:
    try:
        reader_cls = registration.load()
        return reader_cls.check(path)
    except Exception as exc:  # a broken plugin must not hide the other readers' verdicts
        return f"check failed: {type(exc).__name__}: {exc}"


def _check_path_exists(path: Path) -> None:
    if not path.exists():
        raise ReaderError(f"{path}: file not found; check the 'input' path")
    if path.is_dir():
        return  # folder datasets: the readers claiming FOLDER_SUFFIX decide (select_reader)
    if path.stat().st_size == 0:
        raise ReaderError(f"{path}: file is empty (0 bytes); re-export or copy it again")


def feasibility_report(path: Path, registry: "Registry") -> list[ReaderVerdict]:
    """Every available reader's verdict on ``path``, suffix candidates first.

    Readers that claim no suffix (used only when named in the config) still run their
    content check, so the report says whether naming them would work. Raises
    :class:`ReaderError` if ``path`` is missing, a directory or empty.
    """
    path = Path(path)
    _check_path_exists(path)
    verdicts: list[ReaderVerdict] = []
    readers = registry.available("reader")
    ranks = {r.name: _suffix_rank(path, r.suffixes) for r in readers}
    best = max(ranks.values(), default=0)
    for reg in sorted(readers, key=lambda r: (-ranks[r.name], r.name)):
        if not reg.suffixes:
            reason = _check(reg, path)
            verdict = (f"can open it; claims no suffix, so set 'reader: {reg.name}' to use it"
                       if reason is None else reason)
            verdicts.append(ReaderVerdict(reg.name, False, verdict))
            continue
        if ranks[reg.name] == 0:
            verdicts.append(ReaderVerdict(reg.name, False, f"suffix not claimed (claims: {', '.join(reg.suffixes)})"))
            continue
        reason = _check(reg, path)
        if reason is None and ranks[reg.name] < best:
            verdicts.append(ReaderVerdict(reg.name, False, "content ok, but a reader with a more specific suffix is preferred"))
        elif reason is None:
            verdicts.append(ReaderVerdict(reg.name, True, "suffix and content check pass"))
        else:
            verdicts.append(ReaderVerdict(reg.name, False, reason))
    return verdicts


def select_reader(path: Path, registry: "Registry", name: str = "auto") -> "ReaderRegistration":
    """Choose the reader for ``path``: ``name`` if given, else by suffix then content."""
    path = Path(path)
    _check_path_exists(path)
    if name != "auto":
        registration = registry.get("reader", name)
        reason = _check(registration, path)
        if reason is not None:
            raise ReaderError(f"{path}: reader '{name}' cannot open it: {reason}")
        return registration
    readers = registry.available("reader")
    ranks = {r.name: _suffix_rank(path, r.suffixes) for r in readers}
    refusals: list[str] = []
    for rank in sorted({v for v in ranks.values() if v > 0}, reverse=True):
        candidates = [r for r in readers if ranks[r.name] == rank]
        reasons = {r.name: _check(r, path) for r in candidates}
        accepted = [r for r in candidates if reasons[r.name] is None]
        if len(accepted) == 1:
            return accepted[0]
        if len(accepted) > 1:
            names = ", ".join(sorted(r.name for r in accepted))
            raise ReaderError(
                f"{path}: several readers accept this file ({names}); set 'reader:' in the config to one of them"
            )
        refusals += [f"{name}: {reason}" for name, reason in sorted(reasons.items())]
    if path.is_dir():
        why = f" ({'; '.join(refusals)})" if refusals else ""
        raise ReaderError(f"{path}: is a directory, not an image file or a dataset folder a reader opens{why}; "
                          "point 'input' at a file")
    if not refusals:
        claimed = sorted({s for r in readers for s in r.suffixes})
        raise ReaderError(
            f"{path}: no reader claims the suffix of this file (known: {' '.join(claimed) or 'none'}); "
            f"set 'reader:' in the config, or run 'pyama plugins doctor {path}'"
        )
    raise ReaderError(
        f"{path}: no reader can open this file ({'; '.join(refusals)}); "
        f"run 'pyama plugins doctor {path}' for details"
    )


def open_reader(path: Path, registration: "ReaderRegistration",
                params: "dict[str, Any] | PluginParams | None" = None) -> Reader:
    """Validate ``params`` against the registration's model and open ``path`` with it.

    Any failure comes back as a one-line :class:`ReaderError` naming the file (a reader that
    leaks a library exception is wrapped), so callers can open the reader before writing
    any output and stop cleanly.
    """
    from pydantic import ValidationError

    from .errors import ConfigError

    path = Path(path)
    _check_path_exists(path)
    if isinstance(params, PluginParams):
        params = params.model_dump()
    try:
        validated = registration.validate_params(params)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'params'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"reader_params for reader '{registration.name}': {problems}") from None
    reader_cls = registration.load()
    try:
        return reader_cls(path, **validated.model_dump())
    except ReaderError:
        raise
    except Exception as exc:  # a plugin's unexpected failure still ends as one line
        raise file_error(path, f"reader '{registration.name}' failed to open it ({describe_exception(exc)})",
                         "the file may be damaged; run 'pyama plugins doctor' on it") from exc
