"""Output on an object store: `pyama run` against a real S3 API server (moto, its own process).

The same config is run to a local folder and to ``s3://``; traces must be byte-identical,
stage records the same, resume must work after a kill, a second run on an output in use is
refused, and bad locations (missing bucket, refused credentials, unreachable endpoint) are
one-line errors with exit 2 that write nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
import zarr

from _s3server import CREDENTIALS, free_port, start_s3_server
from conftest import pyama, read_frames, small_scene, write_config
from pyama_framework.store import stack_key
from pyama_framework.testing.synthetic import write_ome_tiff

pytest.importorskip("s3fs")
pytest.importorskip("moto")

TRACES = "fov_{0:03d}/movie_fov_{0:03d}_traces.csv"
STAGES = ("copy", "segment", "track", "background", "extract", "crop", "cache")
# Credentials given in storage_options (instead of the environment) must never reach the output.
SECRET_KEY, SECRET_VALUE = "AKIAPYAMAPROBE00001", "pyama-probe-secret-value-42"


@pytest.fixture(scope="module")
def s3():
    server = start_s3_server()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def movie(two_fov_file) -> Path:
    """2 FOVs x 6 frames: every chunk is a request to the server, so keep it small."""
    return two_fov_file


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, movie) -> Path:
    """The reference: the same config written to a local folder."""
    folder = tmp_path_factory.mktemp("local")
    result = pyama("run", str(write_config(folder, movie)))
    assert result.returncode == 0, result.stderr
    return folder / "out"


def _bucket(s3) -> str:
    name = f"pyama-{uuid.uuid4().hex[:12]}"
    s3.filesystem().mkdir(name)
    return name


def _s3_config(folder: Path, movie: Path, url: str, endpoint: str, **sections) -> Path:
    return write_config(folder, movie, output=url, storage_options={"endpoint_url": endpoint}, **sections)


def _run_env() -> dict:
    return {**os.environ, **CREDENTIALS}


def _start(config: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pyama_framework", "run", str(config)], env=_run_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(fs, key: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if fs.exists(key):
            return
        time.sleep(0.05)
    raise AssertionError(f"{key} did not appear while the run was going (exit {proc.poll()})")


def _error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr  # one line: the problem and the fix
    return lines[0]


def _assert_same_results(fs, prefix: str, local: Path) -> None:
    for fov in (0, 1):
        assert fs.cat_file(f"{prefix}/{TRACES.format(fov)}") == (local / TRACES.format(fov)).read_bytes()
        assert fs.cat_file(f"{prefix}/fov_{fov:03d}/tracks.csv") == (local / f"fov_{fov:03d}/tracks.csv").read_bytes()
        for stage in STAGES:  # the same records: the fingerprints do not depend on where the output is
            remote = json.loads(fs.cat_file(f"{prefix}/fov_{fov:03d}/.pyama/{stage}.json"))
            here = json.loads((local / f"fov_{fov:03d}/.pyama/{stage}.json").read_text())
            assert remote["fingerprint"] == here["fingerprint"], stage


def test_run_to_s3_matches_local_disk_and_refuses_a_second_run(tmp_path, s3, movie, local_run):
    fs = s3.filesystem()
    bucket = _bucket(s3)
    url = f"s3://{bucket}/experiment-1"
    config = write_config(tmp_path, movie, output=url, execution={"workers": 2},
                          storage_options={"endpoint_url": s3.endpoint, "key": SECRET_KEY, "secret": SECRET_VALUE})
    first = _start(config)
    _wait_for(fs, f"{bucket}/experiment-1/.pyama-lease.json", first)
    second = pyama("run", str(config), env=_run_env())
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert "warning" not in stderr, stderr  # e.g. the OME-NGFF metadata written to S3 as well
    assert second.returncode == 2
    assert f"output {url} is in use by pyama run on host" in _error_line(second)
    assert f"(pid {first.pid}, started" in second.stderr

    _assert_same_results(fs, f"{bucket}/experiment-1", local_run)
    assert not fs.exists(f"{bucket}/experiment-1/.pyama-lease.json"), "the lease is released at the end"
    saved = fs.cat_file(f"{bucket}/experiment-1/processing_config.yaml").decode()
    assert SECRET_KEY not in saved and SECRET_VALUE not in saved
    assert yaml.safe_load(saved)["storage_options"] == {"endpoint_url": s3.endpoint}
    assert yaml.safe_load(saved)["output"] == url

    # The zarr stores on S3 hold the same arrays as on disk.
    from zarr.storage import FsspecStore

    options = {"endpoint_url": s3.endpoint, "key": CREDENTIALS["AWS_ACCESS_KEY_ID"],
               "secret": CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
    remote = zarr.open_group(FsspecStore.from_url(f"{url}/fov_001/images.zarr", storage_options=options,
                                                  read_only=True), mode="r")
    here = zarr.open_group(local_run / "fov_001/images.zarr", mode="r")
    for name in ("pc_ch_0/0", stack_key("seg_tracked_ch_0", 0), "fl_background_ch_1/0", "pc_ch_0/1"):
        assert (remote[name][:] == here[name][:]).all(), name
    assert dict(remote.attrs) == dict(here.attrs) and "pyama" in remote.attrs  # FOV facts (ome stage)
    assert dict(remote["pc_ch_0"].attrs) == dict(here["pc_ch_0"].attrs)  # NGFF multiscales
    remote_cells = zarr.open_group(FsspecStore.from_url(f"{url}/fov_001/cells.zarr", storage_options=options,
                                                        read_only=True), mode="r")
    here_cells = zarr.open_group(local_run / "fov_001/cells.zarr", mode="r")
    ids = here_cells["metadata/cell_ids"][:]
    assert (remote_cells["metadata/cell_ids"][:] == ids).all()
    assert (remote_cells["fl_ch_1/0"][:] == here_cells["fl_ch_1/0"][:]).all()  # every cell's crop


@pytest.mark.slow
def test_killed_run_on_s3_resumes_to_identical_traces(tmp_path, s3, movie, local_run):
    fs = s3.filesystem()
    bucket = _bucket(s3)
    prefix = f"{bucket}/killed"
    config = _s3_config(tmp_path, movie, f"s3://{prefix}", s3.endpoint)
    proc = _start(config)
    _wait_for(fs, f"{prefix}/fov_000/.pyama/segment.json", proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert not fs.exists(f"{prefix}/{TRACES.format(1)}"), "killed before the end"

    # The dead run's lease object still has a fresh heartbeat: a new run is refused...
    refused = pyama("run", str(config), env=_run_env())
    assert refused.returncode == 2 and f"(pid {proc.pid}, started" in _error_line(refused)
    # ...until the heartbeat is stale. Age it as if a few minutes had passed.
    lease_key = f"{prefix}/.pyama-lease.json"
    lease = json.loads(fs.cat_file(lease_key))
    lease["heartbeat_epoch"] -= 600
    lease["heartbeat"] = "2000-01-01T00:00:00+00:00"
    fs.pipe_file(lease_key, json.dumps(lease).encode())

    resumed = pyama("run", str(config), env=_run_env())
    assert resumed.returncode == 0, resumed.stderr
    assert "fov 000: copy already complete" in resumed.stderr  # the records on S3 were trusted
    assert "fov 000: segment already complete" in resumed.stderr
    _assert_same_results(fs, prefix, local_run)


@pytest.mark.slow
def test_ctrl_c_on_s3_leaves_a_resumable_output(tmp_path, s3):
    fs = s3.filesystem()
    bucket = _bucket(s3)
    prefix = f"{bucket}/interrupted"
    movie = write_ome_tiff(tmp_path / "movie.ome.tif", [small_scene(f, n_frames=30) for f in (0, 1)])
    config = _s3_config(tmp_path, movie, f"s3://{prefix}", s3.endpoint, copy_only=True)  # copying is enough here
    proc = _start(config)
    _wait_for(fs, f"{prefix}/fov_000/.pyama/copy.json", proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert not fs.exists(f"{prefix}/fov_001/.pyama/copy.json")
    assert not fs.exists(f"{prefix}/.pyama-lease.json"), "Ctrl-C releases the lease"
    resumed = pyama("run", str(config), env=_run_env())
    assert resumed.returncode == 0, resumed.stderr
    assert "fov 000: copy already complete" in resumed.stderr
    from zarr.storage import FsspecStore

    options = {"endpoint_url": s3.endpoint, "key": CREDENTIALS["AWS_ACCESS_KEY_ID"],
               "secret": CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
    copied = zarr.open_array(FsspecStore.from_url(f"s3://{prefix}/fov_001/images.zarr/fl_ch_1/0",
                                                  storage_options=options, read_only=True), mode="r")
    assert (copied[:] == read_frames(small_scene(1, n_frames=30))[:, 1]).all()


def test_missing_bucket_is_a_one_line_error_and_creates_nothing(tmp_path, s3, two_fov_file):
    fs = s3.filesystem()
    config = _s3_config(tmp_path, two_fov_file, "s3://no-such-bucket-for-pyama/out", s3.endpoint)
    result = pyama("run", str(config), env=_run_env())
    assert result.returncode == 2
    line = _error_line(result)
    assert "bucket 'no-such-bucket-for-pyama' does not exist" in line and "create it first" in line
    assert not fs.exists("no-such-bucket-for-pyama"), "the bucket was not created behind the user's back"


def test_refused_credentials_are_a_one_line_error(tmp_path, two_fov_file):
    server = start_s3_server(check_credentials=True)
    try:
        config = _s3_config(tmp_path, two_fov_file, "s3://locked/out", server.endpoint)
        result = pyama("run", str(config), env=_run_env())
    finally:
        server.stop()
    assert result.returncode == 2
    line = _error_line(result)
    assert "output s3://locked/out: access refused" in line and "check the credentials" in line


def test_unreachable_endpoint_fails_fast(tmp_path, two_fov_file):
    config = _s3_config(tmp_path, two_fov_file, "s3://bucket/out", f"http://127.0.0.1:{free_port()}")
    started = time.perf_counter()
    result = pyama("run", str(config), env=_run_env())
    elapsed = time.perf_counter() - started
    assert result.returncode == 2
    line = _error_line(result)
    assert "cannot reach the object store" in line and "endpoint_url" in line
    assert elapsed < 30, f"took {elapsed:.1f} s: retries must be bounded"


def test_output_override_accepts_a_url(tmp_path, s3, two_fov_file):
    fs = s3.filesystem()
    bucket = _bucket(s3)
    config = _s3_config(tmp_path, two_fov_file, str(tmp_path / "unused"), s3.endpoint, copy_only=True)
    result = pyama("run", str(config), "--output", f"s3://{bucket}/copy/", env=_run_env())
    assert result.returncode == 0, result.stderr
    assert fs.exists(f"{bucket}/copy/fov_001/.pyama/copy.json")
    assert not (tmp_path / "unused").exists()


def test_missing_credentials_are_a_one_line_error(tmp_path, s3, two_fov_file):
    bucket = _bucket(s3)
    config = _s3_config(tmp_path, two_fov_file, f"s3://{bucket}/out", s3.endpoint)
    env = {k: v for k, v in _run_env().items() if not k.startswith("AWS_")}
    home = tmp_path / "home"  # no ~/.aws either
    result = pyama("run", str(config), env={**env, "HOME": str(home), "AWS_DEFAULT_REGION": "us-east-1",
                                            "AWS_EC2_METADATA_DISABLED": "true"})
    assert result.returncode == 2
    assert "no credentials found" in _error_line(result)
    assert not s3.filesystem().ls(bucket), "nothing was written"


def test_output_urls_and_redaction_without_a_server(tmp_path):
    from pyama_framework.config import RunConfig, config_to_yaml, results_fingerprint
    from pyama_framework.location import parse_output, redacted

    assert parse_output("s3://bucket/prefix/") == "s3://bucket/prefix"
    assert parse_output("file:///data/out") == Path("/data/out")
    assert parse_output("out/") == Path("out")
    with pytest.raises(ValueError, match="names no bucket"):
        parse_output("s3://")
    options = {"endpoint_url": "http://x", "key": "K", "secret": "S", "token": "T",
               "client_kwargs": {"region_name": "eu", "aws_secret_access_key": "S2", "aws_session_token": "T2"}}
    assert redacted(options) == {"endpoint_url": "http://x", "client_kwargs": {"region_name": "eu"}}
    base = {"input": str(tmp_path / "m.tif"), "channels": {"pc": {"channel": 0}}}
    remote = RunConfig.model_validate({**base, "output": "s3://b/p", "storage_options": options})
    assert remote.output == "s3://b/p"
    text = config_to_yaml(remote)
    assert "S2" not in text and "T2" not in text and "secret" not in text and "http://x" in text
    # where the output is (and how to reach it) does not change results
    local = RunConfig.model_validate({**base, "output": str(tmp_path / "out")})
    assert isinstance(local.output, Path)
    assert results_fingerprint(local) == results_fingerprint(remote)


@pytest.mark.slow
def test_dask_local_cluster_writes_to_s3_identical_to_local_disk(tmp_path, s3, movie, local_run):
    """Dask workers (separate processes of a LocalCluster) reach the server through
    storage_options and the environment they inherit; the client holds the lease."""
    pytest.importorskip("distributed")
    fs = s3.filesystem()
    bucket = _bucket(s3)
    config = _s3_config(tmp_path, movie, f"s3://{bucket}/dask", s3.endpoint,
                        execution={"executor": "dask", "workers": 2})
    result = pyama("run", str(config), env=_run_env())
    assert result.returncode == 0, result.stderr
    _assert_same_results(fs, f"{bucket}/dask", local_run)
    assert not fs.exists(f"{bucket}/dask/.pyama-lease.json")


def test_run_whose_lease_is_taken_over_stops_and_says_so(tmp_path, s3):
    """A run presumed dead (no heartbeat for the stale time) whose lease another run took
    over stops at the next frame boundary instead of writing on beside the new holder."""
    fs = s3.filesystem()
    prefix = f"{_bucket(s3)}/taken-over"
    # The lease is taken over as soon as the first FOV's store exists (the run holds its lease
    # by then): the run must notice within a heartbeat (0.2 s) while two 150-frame copies are
    # left, not in the few frames of the second FOV alone (waiting for the first FOV's copy
    # to end lost that race once in CI).
    movie = write_ome_tiff(tmp_path / "movie.ome.tif", [small_scene(f, n_frames=150) for f in (0, 1)])
    config = _s3_config(tmp_path, movie, f"s3://{prefix}", s3.endpoint, copy_only=True)
    proc = subprocess.Popen([sys.executable, "-m", "pyama_framework", "run", str(config)],
                            env={**_run_env(), "PYAMA_LEASE_HEARTBEAT_S": "0.2", "PYAMA_LEASE_STALE_S": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(fs, f"{prefix}/fov_000/images.zarr/zarr.json", proc)
    lease_key = f"{prefix}/.pyama-lease.json"
    other = {"host": "elsewhere", "pid": 4242, "started": "2026-12-02T00:00:00+00:00",
             "heartbeat": "2026-12-02T00:00:01+00:00", "heartbeat_epoch": time.time(), "token": "the-other-run"}
    fs.pipe_file(lease_key, json.dumps(other).encode())  # what a run taking over writes
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert "pyama run on host elsewhere (pid 4242" in errors[0] and "took over this run's lease" in errors[0]
    assert not fs.exists(f"{prefix}/fov_001/.pyama/copy.json"), "the second FOV was not finished by this run"
    assert json.loads(fs.cat_file(lease_key))["token"] == "the-other-run", "the new holder's lease is left alone"
