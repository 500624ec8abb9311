"""The output lease: one writer per output, on local disk (fcntl) and as a heartbeat object."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pyama_framework.lease import LOCK_FILENAME, OBJECT_FILENAME, LeaseError, acquire_lease

HOLD = """
import sys, time
from pyama_framework.lease import acquire_lease
lease = acquire_lease(sys.argv[1], mode=sys.argv[2], heartbeat_s=0.2, stale_s=1.0, settle_s=0.05)
print("held", flush=True)
time.sleep(600)
"""


def _holder_process(output: Path, mode: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(output), mode], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_file_lease_refuses_a_second_holder_and_names_the_first(tmp_path):
    out = tmp_path / "out"
    with acquire_lease(out) as lease:
        assert (out / LOCK_FILENAME).exists()
        assert lease.holder["pid"] == os.getpid() and lease.holder["host"] == socket.gethostname()
        with pytest.raises(LeaseError) as refused:
            acquire_lease(out)
        message = str(refused.value)
        assert "\n" not in message
        assert f"output {out} is in use by pyama run on host {socket.gethostname()} (pid {os.getpid()}, " \
               f"started {lease.holder['started']})" in message
        assert "wait for it to finish or choose another output" in message
    # released: the lock file is gone, the folder it created too (nothing else was written)
    assert not out.exists()
    with acquire_lease(out):
        (out / "result.txt").write_text("x")
    assert (out / "result.txt").exists() and not (out / LOCK_FILENAME).exists()


def test_file_lease_of_a_killed_process_is_taken_over_at_once(tmp_path):
    out = tmp_path / "out"
    proc = _holder_process(out, "file")
    try:
        with pytest.raises(LeaseError, match=f"pid {proc.pid}"):
            acquire_lease(out)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with acquire_lease(out) as lease:  # the kernel dropped the dead process's lock
        assert json.loads((out / LOCK_FILENAME).read_text())["pid"] == os.getpid() == lease.holder["pid"]


def test_file_lease_refuses_a_file_as_output(tmp_path):
    target = tmp_path / "out"
    target.write_text("not a folder")
    with pytest.raises(Exception, match="is a file; choose a folder"):
        acquire_lease(target)


def _lease_object(out) -> dict:
    """The lease object as its holder last wrote it: a heartbeat rewrites the file in place,
    so a read can catch it empty or half-written (the lease code itself retries the same way)."""
    for _ in range(50):
        try:
            return json.loads((out / OBJECT_FILENAME).read_text())
        except json.JSONDecodeError:
            time.sleep(0.01)
    raise AssertionError("the lease object stayed unreadable for 0.5 s")


def test_object_lease_heartbeat_refusal_and_stale_takeover(tmp_path):
    out = tmp_path / "out"
    proc = _holder_process(out, "object")
    try:
        first = _lease_object(out)
        assert first["pid"] == proc.pid and first["token"]
        time.sleep(0.7)
        beat = _lease_object(out)
        assert beat["token"] == first["token"] and beat["heartbeat_epoch"] > first["heartbeat_epoch"]
        with pytest.raises(LeaseError, match=f"pid {proc.pid}"):  # fresh heartbeat: refused
            acquire_lease(out, mode="object", heartbeat_s=0.2, stale_s=1.0, settle_s=0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    with pytest.raises(LeaseError):  # killed just now: its heartbeat is still fresh
        acquire_lease(out, mode="object", heartbeat_s=0.2, stale_s=1.0, settle_s=0.05)
    time.sleep(1.2)
    lease = acquire_lease(out, mode="object", heartbeat_s=0.2, stale_s=1.0, settle_s=0.05)
    assert _lease_object(out)["pid"] == os.getpid()
    lease.release()
    assert not (out / OBJECT_FILENAME).exists()


def test_object_lease_taken_over_is_not_deleted_by_the_old_holder(tmp_path):
    out = tmp_path / "out"
    lease = acquire_lease(out, mode="object", heartbeat_s=0.1, stale_s=1.0, settle_s=0.05)
    other = {"host": "elsewhere", "pid": 1, "started": "x", "heartbeat": "x",
             "heartbeat_epoch": time.time() + 100, "token": "theirs"}
    (out / OBJECT_FILENAME).write_text(json.dumps(other))
    assert lease.lost.wait(2), "the heartbeat notices that its lease was taken over"
    lease.release()
    assert _lease_object(out)["token"] == "theirs"


def test_object_lease_race_has_exactly_one_winner(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    results: list[object] = []
    start = threading.Barrier(3)

    def contend() -> None:
        start.wait()
        try:
            results.append(acquire_lease(out, mode="object", heartbeat_s=5, stale_s=30, settle_s=0.3))
        except LeaseError as exc:
            results.append(exc)

    threads = [threading.Thread(target=contend) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if not isinstance(r, LeaseError)]
    assert len(winners) == 1 and len(results) == 3
    token = _lease_object(out)["token"]
    assert winners[0]._holder["token"] == token
    winners[0].release()


def test_object_lease_on_a_memory_url():
    url = f"memory://lease-test-{os.getpid()}/out"
    with acquire_lease(url, heartbeat_s=0.2, stale_s=1.0, settle_s=0.01):
        with pytest.raises(LeaseError, match=f"output {url} is in use"):
            acquire_lease(url, heartbeat_s=0.2, stale_s=1.0, settle_s=0.01)
    with acquire_lease(url, heartbeat_s=0.2, stale_s=1.0, settle_s=0.01):
        pass


# ------------------------------------------------------------- through pyama run
def _movie(folder: Path, n_fovs: int = 2, n_frames: int = 20) -> Path:
    from pyama_framework.testing.synthetic import write_ome_tiff

    from conftest import small_scene

    return write_ome_tiff(folder / "movie.ome.tif", [small_scene(f, n_frames=n_frames) for f in range(n_fovs)])


def _traces(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.glob("fov_*/*_traces.csv"))}


# The default segmenter, at least 0.25 s per frame: the first run is still running when the
# second starts, however fast the machine.
UNHURRIED = """
import time
from pyama_framework import SegmenterRegistration, hookimpl

def segment_slowly(image):
    from pyama_builtin.segmentation.logstd import segment_logstd
    from pyama_builtin.segmentation import LogStdParams
    time.sleep(0.25)
    return segment_logstd(image, **LogStdParams().model_dump())

@hookimpl
def pyama_segmenters():
    yield SegmenterRegistration(name="unhurried", summary="logstd, slowly", implementation=segment_slowly)
"""


def test_second_run_started_4_s_later_is_refused_and_the_first_completes(tmp_path):
    """The issue's scenario: two `pyama run` on one output, 4 s apart."""
    from conftest import make_distribution, pyama, write_config

    site = make_distribution(tmp_path / "site", "lab-unhurried", "0.1", {"unhurried": "lab_unhurried"},
                             {"lab_unhurried.py": UNHURRIED})
    env = {"PYTHONPATH": str(site)}
    movie = _movie(tmp_path)
    slow = {"segmentation": {"method": "unhurried", "params": {}}}
    (tmp_path / "ref").mkdir()
    assert pyama("run", str(write_config(tmp_path / "ref", movie, **slow)), env=env).returncode == 0
    config = write_config(tmp_path, movie, **slow)
    first = subprocess.Popen([sys.executable, "-m", "pyama_framework", "run", str(config)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
    time.sleep(4)
    out = tmp_path / "out"
    saved = out / "processing_config.yaml"
    deadline = time.time() + 60
    while time.time() < deadline and not any(out.glob("fov_*/.pyama/copy.json")):
        time.sleep(0.05)  # (a loaded machine may take longer than 4 s to start)
    assert first.poll() is None, "the first run should still be running"
    config_written, records = saved.stat().st_mtime_ns, sorted(out.glob("fov_*/.pyama/*.json"))
    second = pyama("run", str(config), env=env)
    assert second.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert f"output {out} is in use by pyama run on host {socket.gethostname()} (pid {first.pid}, started " in lines[0]
    # the refused run neither rewrote the config nor cleared the first run's stage records
    assert saved.stat().st_mtime_ns == config_written
    assert all(r.exists() for r in records) and records
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert _traces(out) == _traces(tmp_path / "ref" / "out") and len(_traces(out)) == 2
    assert not (out / LOCK_FILENAME).exists()


def test_run_killed_with_sigkill_leaves_a_lease_that_the_next_run_takes_over(tmp_path):
    from conftest import pyama, write_config

    movie = _movie(tmp_path, n_fovs=1)
    config = write_config(tmp_path, movie)
    run = subprocess.Popen([sys.executable, "-m", "pyama_framework", "run", str(config)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = tmp_path / "out" / "fov_000" / ".pyama"
    deadline = time.time() + 120
    while time.time() < deadline and not (records / "segment.json").exists():
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.wait()
    lock = tmp_path / "out" / LOCK_FILENAME
    assert json.loads(lock.read_text())["pid"] == run.pid  # left behind by the killed run
    resumed = pyama("run", str(config))
    assert resumed.returncode == 0, resumed.stderr
    assert "fov 000: segment already complete" in resumed.stderr
    assert not lock.exists()
