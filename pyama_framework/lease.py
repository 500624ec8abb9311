"""One writer per output: an exclusive lease taken before a run writes anything.

Two kinds of lease, chosen from the output's address:

- a local path: an ``fcntl.flock`` on ``<output>/.pyama-lease``, with the holder (host, pid,
  start time) written into the file. The kernel drops the lock when its process dies, so a
  killed run's lease is taken over at once.
- an fsspec URL (``s3://``, ``gs://``, ``memory://``, ... anything with ``://`` except
  ``file://``), or ``mode="object"``: a lease object ``<output>/.pyama-lease.json``
  ``{host, pid, started, heartbeat, token}``. A background thread refreshes ``heartbeat``
  every ``heartbeat_s``; another run refuses while the heartbeat is fresh and takes over once
  it is older than ``stale_s``. Object stores have no lock, so a new holder writes its lease,
  waits ``settle_s`` and re-reads it: if another run's token is there, that run won the race.

Heartbeats compare wall clocks of different hosts; keep ``stale_s`` well above their skew.
``PYAMA_LEASE_HEARTBEAT_S`` and ``PYAMA_LEASE_STALE_S`` set them (defaults 10 and 60 s).

A run whose heartbeats stopped reaching the store for ``stale_s`` (a network partition, a
suspended process) may find that another run took its lease over. The heartbeat thread then
sets :attr:`Lease.lost` and calls ``on_lost``: ``pyama run`` stops at the next frame boundary
(as on Ctrl-C) and reports it, so two runs do not keep writing one output.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from .errors import OutputError

LOCK_FILENAME = ".pyama-lease"
OBJECT_FILENAME = ".pyama-lease.json"
LEASE_FILENAMES = (LOCK_FILENAME, OBJECT_FILENAME)


class LeaseError(OutputError):
    """The output is in use by another run (or the lease could not be taken)."""


def _now_iso(t: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if t is None else t, timezone.utc).isoformat(timespec="seconds")


def _in_use(output: str, holder: dict[str, Any]) -> LeaseError:
    return LeaseError(
        f"output {output} is in use by pyama run on host {holder.get('host', '?')} "
        f"(pid {holder.get('pid', '?')}, started {holder.get('started', '?')}); "
        f"wait for it to finish or choose another output"
    )


def is_url(output: str | os.PathLike) -> bool:
    """True for an fsspec URL other than ``file://`` (those take an object lease)."""
    text = str(output)
    return "://" in text and not text.startswith("file://")


class Lease:
    """An acquired lease; a context manager that releases it on exit (also on error/Ctrl-C)."""

    def __init__(self, output: str, holder: dict[str, Any]):
        self.output = output
        self._holder = holder
        self.lost = threading.Event()  # set if another run took the lease over (object mode)
        self.taken_by: dict[str, Any] = {}  # that run's holder record

    @property
    def holder(self) -> dict[str, Any]:
        """``{host, pid, started, heartbeat}`` of this lease."""
        return {k: self._holder[k] for k in ("host", "pid", "started", "heartbeat")}

    def release(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


class FileLease(Lease):
    """``flock`` on ``<output>/.pyama-lease``: held as long as this process keeps the file open."""

    def __init__(self, output: str, holder: dict[str, Any], fd: int, path: Path, created_dir: bool):
        super().__init__(output, holder)
        self._fd, self._path, self._created_dir = fd, path, created_dir

    def release(self) -> None:
        if self._fd < 0:
            return
        import fcntl

        # Unlink while still locked: a run that opened the old file sees it replaced and retries.
        self._path.unlink(missing_ok=True)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = -1
        if self._created_dir:
            try:
                self._path.parent.rmdir()  # only if the run wrote nothing else
            except OSError:
                pass


def _read_lock_holder(path: Path) -> dict[str, Any]:
    # The holder writes its JSON just after locking; give it a moment before saying "?".
    for _ in range(20):
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            time.sleep(0.025)
    return {}


def _acquire_file_lease(output: str) -> FileLease:
    import fcntl

    root = Path(output.removeprefix("file://"))
    if root.exists() and not root.is_dir():
        raise OutputError(f"output {root} is a file; choose a folder")
    created_dir = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"output {root}: cannot create the folder ({exc.strerror}); choose a writable location") from None
    path = root / LOCK_FILENAME
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(f"output {root}: cannot write {LOCK_FILENAME} ({exc.strerror}); choose a writable location") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise OutputError(f"output {root}: this filesystem cannot lock {LOCK_FILENAME} ({exc.strerror}); "
                                  f"mount it with lock support or use an object-store output") from None
            raise _in_use(str(root), _read_lock_holder(path)) from None
        # The previous holder may have unlinked the file between our open and our lock:
        # then we locked an orphan and must lock the file that is there now.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    started = time.time()
    holder = {"host": socket.gethostname(), "pid": os.getpid(), "started": _now_iso(started),
              "heartbeat": _now_iso(started)}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(holder).encode(), 0)
    return FileLease(str(root), holder, fd, path, created_dir)


class ObjectLease(Lease):
    """A lease object refreshed by a heartbeat thread; released by deleting it if still ours."""

    def __init__(self, output: str, holder: dict[str, Any], fs: Any, path: str, heartbeat_s: float,
                 on_lost: Callable[[], None] | None = None):
        super().__init__(output, holder)
        self._fs, self._path, self._heartbeat_s = fs, path, heartbeat_s
        self._on_lost = on_lost
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._beat, name="pyama-lease-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self._heartbeat_s):
            with self._lock:
                if self._stop.is_set():
                    return
                try:
                    current = _read_object(self._fs, self._path)
                    if current is not None and current.get("token") != self._holder["token"]:
                        self.taken_by = current  # taken over (we were presumed dead): stop claiming it
                        self.lost.set()
                        if self._on_lost is not None:
                            self._on_lost()
                        return
                    self._holder["heartbeat"] = _now_iso()
                    self._holder["heartbeat_epoch"] = time.time()
                    _write_object(self._fs, self._path, self._holder)
                except Exception:  # a transient store error: try again at the next beat
                    continue

    def release(self) -> None:
        if self._stop.is_set():
            return
        with self._lock:
            self._stop.set()
        self._thread.join(timeout=5)
        try:
            current = _read_object(self._fs, self._path)
            if current is not None and current.get("token") == self._holder["token"]:
                self._fs.rm_file(self._path)
        except FileNotFoundError:
            pass


def _read_object(fs: Any, path: str) -> dict[str, Any] | None:
    try:
        data = fs.cat_file(path)
    except FileNotFoundError:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return {}  # being written: treated as held and fresh by the caller's retry


def _write_object(fs: Any, path: str, holder: dict[str, Any]) -> None:
    data = json.dumps(holder).encode()
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    if "file" in protocols or "local" in protocols:
        # A local file is truncated, then written: two runs writing at once could leave one's
        # bytes over the other's tail, which no run reads as its own (a race with no winner).
        # A complete copy renamed into place is atomic, as an object store's PUT is.
        partial = f"{path}.{holder['token']}.partial"
        with open(partial, "wb") as file:
            file.write(data)
        os.replace(partial, path)
    else:
        fs.pipe_file(path, data)


def _fresh(holder: dict[str, Any], stale_s: float) -> bool:
    beat = holder.get("heartbeat_epoch")
    if not isinstance(beat, (int, float)):
        try:
            beat = datetime.fromisoformat(str(holder.get("heartbeat"))).timestamp()
        except ValueError:
            return False  # unreadable: abandoned
    return time.time() - beat < stale_s


def _acquire_object_lease(output: str, storage_options: dict | None, heartbeat_s: float, stale_s: float,
                          settle_s: float, on_lost: Callable[[], None] | None) -> ObjectLease:
    import fsspec

    fs, root = fsspec.core.url_to_fs(output, **(storage_options or {}))
    path = f"{root.rstrip('/')}/{OBJECT_FILENAME}"
    current = _read_object(fs, path)
    if current == {}:  # half-written by a run starting right now: look again
        time.sleep(settle_s)
        current = _read_object(fs, path)
    if current is not None and (current == {} or _fresh(current, stale_s)):
        raise _in_use(output, current)
    started = time.time()
    holder = {"host": socket.gethostname(), "pid": os.getpid(), "started": _now_iso(started),
              "heartbeat": _now_iso(started), "heartbeat_epoch": started, "token": uuid.uuid4().hex}
    try:
        if not fs.exists(root):
            fs.makedirs(root, exist_ok=True)
        _write_object(fs, path, holder)
    except (PermissionError, OSError) as exc:
        raise OutputError(f"output {output}: cannot write the lease object ({type(exc).__name__}: {exc}); "
                          f"check the location and its credentials") from None
    time.sleep(settle_s)  # another run that wrote at the same time: the last write wins
    winner = _read_object(fs, path)
    if winner is None or winner.get("token") != holder["token"]:
        raise _in_use(output, winner or {})
    return ObjectLease(output, holder, fs, path, heartbeat_s, on_lost)


def _seconds(variable: str, default: float) -> float:
    text = os.environ.get(variable)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise OutputError(f"{variable}={text!r} is not a positive number of seconds; set it to e.g. {default:g}")
    return value


def lost_message(lease: Lease) -> str:
    """One line for a run whose lease another run took over."""
    by = lease.taken_by
    who = (f"pyama run on host {by.get('host', '?')} (pid {by.get('pid', '?')}, started {by.get('started', '?')})"
           if by else "another run")
    return (f"output {lease.output}: {who} took over this run's lease after its heartbeats stopped reaching "
            f"the store; this run stopped and its unfinished FOVs are not marked done (that run continues them)")


def acquire_lease(output: str | os.PathLike, storage_options: dict | None = None, *,
                  heartbeat_s: float | None = None, stale_s: float | None = None, mode: str | None = None,
                  settle_s: float = 0.5, on_lost: Callable[[], None] | None = None) -> Lease:
    """Take the exclusive lease on ``output`` or raise :class:`LeaseError` naming its holder.

    Parameters
    ----------
    output
        The run's output folder (a local path) or fsspec URL.
    storage_options
        Passed to fsspec for a URL.
    heartbeat_s, stale_s
        Object leases only: refresh period, and the age after which a lease counts as
        abandoned (default: ``PYAMA_LEASE_HEARTBEAT_S`` / ``PYAMA_LEASE_STALE_S``, else 10 / 60 s).
    mode
        ``"file"`` (fcntl lock) or ``"object"`` (lease object); by default ``"object"`` for a URL
        and ``"file"`` for a local path. ``"object"`` also suits shared filesystems whose
        locks are unreliable.
    settle_s
        Object leases only: how long to wait before re-reading our lease to detect a race.
    on_lost
        Object leases only: called from the heartbeat thread if another run took the lease
        over (after :attr:`Lease.lost` is set).
    """
    text = os.fspath(output)
    mode = mode or ("object" if is_url(text) else "file")
    if mode == "file":
        if is_url(text):
            raise OutputError(f"output {text}: a lock file needs a local path; use mode='object' for a URL")
        return _acquire_file_lease(text)
    if mode == "object":
        heartbeat_s = _seconds("PYAMA_LEASE_HEARTBEAT_S", 10.0) if heartbeat_s is None else heartbeat_s
        stale_s = _seconds("PYAMA_LEASE_STALE_S", 60.0) if stale_s is None else stale_s
        if stale_s <= heartbeat_s:
            raise OutputError(f"lease: the stale time ({stale_s:g} s) must be longer than the heartbeat "
                              f"({heartbeat_s:g} s); set PYAMA_LEASE_STALE_S above PYAMA_LEASE_HEARTBEAT_S")
        return _acquire_object_lease(text, storage_options, heartbeat_s, stale_s, settle_s, on_lost)
    raise ValueError(f"unknown lease mode '{mode}'; choose one of: file, object")
