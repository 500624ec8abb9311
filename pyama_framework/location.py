"""Where a run's output lives: a local folder, or an fsspec URL (``s3://``, ``gs://``, ...).

Everything that writes or reads the output goes through the few helpers here, so the
store, the stages and the runner work the same on a local disk and on an object store:

- :func:`output_root` gives a ``pathlib.Path`` for a local folder and a ``UPath``
  (universal-pathlib: the pathlib API over fsspec) for a URL, so ``root / "fov_000"``,
  ``read_text``, ``write_text``, ``iterdir``, ``unlink`` and ``open`` work on both;
- :func:`zarr_store` gives the zarr store of a sub-path (``LocalStore`` or ``FsspecStore``);
- ``store.atomic_write_text``, :func:`ensure_dir` and :func:`remove_tree` do what object
  stores do differently: there is no rename and no folder there, but one PUT is atomic,
  so a file is written as one object and readers see the old one or the whole new one;
- :func:`check_output` probes a URL's bucket before anything is written, so a missing
  bucket, refused credentials or an unreachable endpoint is a one-line error.

Credentials come from the environment (``AWS_ACCESS_KEY_ID``, ...); any that are put in
``storage_options`` anyway are left out of ``processing_config.yaml`` (:func:`redacted`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .errors import OutputError

# Another process (a worker, a resumed run, zarr's own asynchronous filesystem instance)
# writes the same prefixes: a cached listing would go stale, so listings are not cached.
DEFAULT_OPTIONS: dict[str, Any] = {"use_listings_cache": False}
# Protocols whose first path component is a bucket that must exist before a run.
BUCKET_PROTOCOLS = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"}
# The probe of a bucket gives up quickly: a few seconds, not botocore's minutes of retries.
S3_PROBE_CONFIG = {"connect_timeout": 5, "read_timeout": 10, "retries": {"max_attempts": 2, "mode": "standard"}}
# storage_options keys (split at "_") that hold credentials: never written to the output.
SECRET_WORDS = {"key", "secret", "token", "password", "passwd", "credential", "credentials", "sas", "signature"}


def is_url(output: str | os.PathLike) -> bool:
    """True for an fsspec URL other than ``file://`` (a ``file://`` URL is a local path)."""
    text = os.fspath(output) if not isinstance(output, str) else output
    return "://" in text and not text.startswith("file://")


def parse_output(value: Any) -> Any:
    """The config's ``output``: a URL stays a string (without a trailing ``/``), anything
    else becomes a ``Path`` (``file:///data/out`` -> ``/data/out``)."""
    if not isinstance(value, (str, os.PathLike)):
        return value  # let pydantic report the wrong type
    text = os.fspath(value)
    if text.startswith("file://"):
        return Path(text.removeprefix("file://"))
    if is_url(text):
        scheme, _, rest = text.partition("://")
        if not rest.strip("/"):
            raise ValueError(f"'{text}' names no bucket or folder; use e.g. {scheme}://bucket/prefix")
        return f"{scheme}://{rest.rstrip('/')}"
    return Path(text)


def output_root(output: Any, storage_options: dict[str, Any] | None = None) -> Any:
    """``Path`` for a local output, ``UPath`` (with ``storage_options``) for a URL."""
    if isinstance(output, Path) or hasattr(output, "storage_options"):
        return output  # already a Path or a UPath
    if not is_url(output):
        return Path(parse_output(output))
    from upath import UPath

    return UPath(str(output), **{**DEFAULT_OPTIONS, **(storage_options or {})})


def is_remote(path: Any) -> bool:
    return not isinstance(path, Path)


def zarr_store(path: Any, read_only: bool = False) -> Any:
    """The zarr store rooted at ``path`` (a ``Path`` or ``UPath``)."""
    if not is_remote(path):
        from zarr.storage import LocalStore

        return LocalStore(path, read_only=read_only)
    from zarr.storage import FsspecStore

    return FsspecStore.from_url(str(path), storage_options=dict(path.storage_options), read_only=read_only)


def ensure_dir(path: Any) -> None:
    """Create a local folder; object stores have no folders (a prefix exists once it holds an object)."""
    if not is_remote(path):
        path.mkdir(parents=True, exist_ok=True)


def remove_tree(path: Any) -> None:
    """Delete a folder (or prefix) and everything under it, or a single file."""
    if not is_remote(path):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        return
    try:
        path.fs.rm(path.path, recursive=True)
    except FileNotFoundError:
        pass


def scratch_file(path: Any, name: str) -> Path:
    """A local file for a stage's scratch data: in the output when it is local (removed
    by the stage), else in the system's temporary folder (scratch never goes to an object store)."""
    if not is_remote(path):
        path.mkdir(parents=True, exist_ok=True)
        return path / name
    return Path(tempfile.gettempdir()) / f"pyama-{os.getpid()}-{abs(hash(str(path)))}-{name}"


def redacted(options: dict[str, Any]) -> dict[str, Any]:
    """``storage_options`` without credentials (keys such as ``key``, ``secret``, ``token``,
    ``aws_secret_access_key``), at any depth: safe to write into the output."""
    out: dict[str, Any] = {}
    for name, value in options.items():
        if SECRET_WORDS & set(str(name).lower().replace("-", "_").split("_")):
            continue
        out[name] = redacted(value) if isinstance(value, dict) else value
    return out


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def check_output(output: Any, storage_options: dict[str, Any] | None = None) -> None:
    """Probe a URL output before anything is written; raise :class:`OutputError` (one line)
    for a missing filesystem package, a bucket that does not exist, refused credentials or
    an endpoint that cannot be reached. A local output needs no probe."""
    if isinstance(output, Path) or not is_url(output):
        return
    import fsspec

    url = str(output)
    protocol, _, rest = url.partition("://")
    options = {**DEFAULT_OPTIONS, **(storage_options or {}), "skip_instance_cache": True}
    if protocol in ("s3", "s3a"):
        options["config_kwargs"] = {**S3_PROBE_CONFIG, **options.get("config_kwargs", {})}
    try:
        fs = fsspec.filesystem(protocol, **options)
    except ImportError as exc:
        raise OutputError(f"output {url}: {exc}; install the package for '{protocol}://' "
                          f"(e.g. pip install 'pyama-framework[s3]')") from None
    except (TypeError, ValueError) as exc:
        raise OutputError(f"storage_options: not accepted by the '{protocol}' filesystem ({_one_line(exc)}); "
                          f"see its documentation") from None
    bucket = rest.split("/", 1)[0]
    try:
        if protocol in BUCKET_PROTOCOLS:
            fs.info(bucket)
        else:
            fs.exists(rest)
    except FileNotFoundError:
        raise OutputError(f"output {url}: bucket '{bucket}' does not exist; create it first or fix the URL") from None
    except PermissionError as exc:
        raise OutputError(f"output {url}: access refused ({_one_line(exc)}); check the credentials in the "
                          f"environment (e.g. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and the bucket's policy") from None
    except Exception as exc:
        if "credential" in type(exc).__name__.lower():  # botocore's NoCredentialsError, ...
            raise OutputError(f"output {url}: no credentials found ({_one_line(exc)}); set them in the "
                              f"environment (e.g. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)") from None
        raise OutputError(f"output {url}: cannot reach the object store ({_one_line(exc)}); check "
                          f"storage_options (e.g. endpoint_url) and the network") from None
