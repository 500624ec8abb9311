"""The dask executor through ``pyama run``, on a real scheduler and real worker processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from conftest import make_distribution, pyama, read_frames, small_scene, write_config  # noqa: E402
from test_run import FAULTY, TRACES  # noqa: E402

DASK = str(Path(sys.executable).parent / "dask")
N_FOVS = 2


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """A ``dask scheduler`` process; yields its scheduler file (workers join through it)."""
    folder = tmp_path_factory.mktemp("scheduler")
    file = folder / "scheduler.json"
    proc = subprocess.Popen([DASK, "scheduler", "--port", "0", "--no-dashboard", "--scheduler-file", str(file)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder)
    try:
        _wait_for(lambda: file.exists() and file.stat().st_size > 0, 60, "the scheduler")
        yield file
    finally:
        proc.kill()
        proc.wait()


def _start_worker(scheduler_file: Path, cwd: Path) -> subprocess.Popen:
    # No nanny: the worker is this very process, so killing it kills the worker mid-task.
    return subprocess.Popen([DASK, "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1",
                             "--no-nanny", "--no-dashboard"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=cwd)


def _wait_for_workers(scheduler_file: Path, n: int) -> None:
    from distributed import Client

    with Client(scheduler_file=str(scheduler_file), timeout="30s") as client:
        client.wait_for_workers(n, timeout=90)


@pytest.fixture(scope="module")
def movie(tmp_path_factory) -> Path:
    from pyama_framework.testing.synthetic import write_ome_tiff

    path = tmp_path_factory.mktemp("dask-data") / "movie.ome.tif"
    return write_ome_tiff(path, [small_scene(f, n_frames=20) for f in range(N_FOVS)])


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory, movie) -> Path:
    """The local executor's output for ``movie``."""
    folder = tmp_path_factory.mktemp("local-ref")
    result = pyama("run", str(write_config(folder, movie, execution={"workers": 1})))
    assert result.returncode == 0, result.stderr
    return folder / "out"


def _records(out: Path, fov: int) -> dict[str, str]:
    folder = out / f"fov_{fov:03d}" / ".pyama"
    return {p.stem: json.loads(p.read_text())["fingerprint"] for p in sorted(folder.glob("*.json"))}


def _assert_same_as_local(out: Path, reference: Path) -> None:
    for fov in range(N_FOVS):
        assert (out / TRACES.format(fov)).read_bytes() == (reference / TRACES.format(fov)).read_bytes()
        assert _records(out, fov) == _records(reference, fov)  # same stages, same fingerprints


def test_worker_killed_mid_fov_run_completes_identical_to_local(tmp_path, scheduler, movie, local_reference):
    workers = [_start_worker(scheduler, tmp_path) for _ in range(2)]
    try:
        _wait_for_workers(scheduler, 2)
        address = json.loads(scheduler.read_text())["address"]
        config = write_config(tmp_path, movie, execution={"executor": "dask", "address": address})
        run = subprocess.Popen([sys.executable, "-m", "pyama_framework", "run", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out = tmp_path / "out"
        # Each worker is busy with a FOV: kill one as soon as a FOV is mid-way (none complete).
        _wait_for(lambda: any(out.glob("fov_*/.pyama/segment.json")), 180, "a FOV to be segmented")
        assert not any(out.glob("fov_*/.pyama/cache.json")), "no FOV should be complete yet"

        from distributed import Client

        with Client(scheduler_file=str(scheduler), timeout="30s") as observer:  # which worker runs a FOV?
            busy = {addr: str(k) for addr, keys in observer.processing().items()
                    for k in keys if str(k).startswith("pyama-fov-")}
            addr, key = next(iter(busy.items()))
            pid = observer.run(os.getpid, workers=[addr])[addr]
        victim = next(w for w in workers if w.pid == pid)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        lost_fov = int(key.split("-")[2])
        copied = (out / f"fov_{lost_fov:03d}" / ".pyama" / "copy.json").exists()

        # While the FOV is retried, the client holds the output's lease: another run is refused at once.
        from pyama_framework.lease import LeaseError, acquire_lease

        with pytest.raises(LeaseError) as refused:
            acquire_lease(out)
        assert (f"output {out} is in use by pyama run on host {socket.gethostname()} (pid {run.pid}, started "
                in str(refused.value))

        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr
        assert "dask scheduler tcp://" in stderr and "(2 worker(s) now)" in stderr, stderr[:600]
        if copied:  # the retry on the other worker resumed from the dead worker's records
            assert f"fov {lost_fov:03d}: copy already complete" in stderr, stderr
        assert f"{N_FOVS} of {N_FOVS} FOV(s) complete" in stderr
        for fov in range(N_FOVS):  # progress of every FOV's stages reached the client
            assert f"fov {fov:03d}: extract done" in stderr or f"fov {fov:03d}: extract already complete" in stderr
        _assert_same_as_local(out, local_reference)
        assert not (out / ".pyama-lease").exists()  # released at the end
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()


@pytest.mark.slow
def test_ctrl_c_in_the_terminal_cancels_the_tasks_and_the_run_resumes(tmp_path, movie, local_reference):
    # A local cluster; Ctrl-C in a terminal signals the whole process group (client and workers).
    config = write_config(tmp_path, movie, execution={"executor": "dask", "workers": 2})
    run = subprocess.Popen([sys.executable, "-m", "pyama_framework", "run", str(config)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    out = tmp_path / "out"
    _wait_for(lambda: any(out.glob("fov_*/.pyama/copy.json")), 180, "a FOV to be copied")
    os.killpg(run.pid, signal.SIGINT)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 130, stderr
    assert "run the same command again to resume" in stderr
    assert "Traceback" not in stderr  # the workers stopped their tasks instead of dying
    assert not all((out / f"fov_{f:03d}" / ".pyama" / "cache.json").exists() for f in range(N_FOVS))
    resumed = pyama("run", str(config))
    assert resumed.returncode == 0, resumed.stderr
    assert "already complete" in resumed.stderr
    _assert_same_as_local(out, local_reference)


@pytest.mark.slow
def test_failing_plugin_fails_its_fov_only_on_a_local_cluster(tmp_path):
    frames = [read_frames(small_scene(f)) for f in (0, 1, 2)]
    frames[1][:, 0] = 1000  # FOV 1: blank phase contrast
    import tifffile

    path = tmp_path / "three.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as tif:
        for data in frames:
            tif.write(data, metadata={"axes": "TCYX"})
    site = make_distribution(tmp_path / "site", "lab-fragile", "0.1", {"fragile": "lab_fragile"},
                             {"lab_fragile.py": FAULTY})
    config = write_config(tmp_path, path, segmentation={"method": "fragile", "params": {}},
                          execution={"executor": "dask", "workers": 2})
    result = pyama("run", str(config), env={"PYTHONPATH": str(site)})
    assert result.returncode == 1, result.stderr
    assert "dask local cluster, 2 worker(s)" in result.stderr and "; dashboard http://" in result.stderr
    assert "FOV 1 failed" in result.stderr and "no contrast" in result.stderr
    assert "2 of 3 FOV(s) complete" in result.stderr
    out = tmp_path / "out"
    assert (out / "fov_000" / "three_fov_000_traces.csv").exists()
    assert (out / "fov_002" / "three_fov_002_traces.csv").exists()
    assert "ValueError" in (out / "fov_001" / "error.log").read_text()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_is_one_line_within_10_s_and_writes_nothing(tmp_path, two_fov_file):
    from pyama_framework.config import load_config
    from pyama_framework.errors import ExecutorError
    from pyama_framework.executors import open_executor
    from pyama_framework.runner import plan_run

    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    config = write_config(tmp_path, two_fov_file, execution={"executor": "dask", "address": address})
    plan = plan_run(load_config(config))
    started = time.monotonic()  # the connection attempt itself (process start-up varies with load)
    with pytest.raises(ExecutorError, match=f"cannot reach the dask scheduler at {address}"):
        open_executor(plan)
    assert time.monotonic() - started < 10

    result = pyama("run", str(config))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"cannot reach the dask scheduler at {address}" in lines[0], result.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_executor_lists_the_choices(tmp_path, two_fov_file):
    config = write_config(tmp_path, two_fov_file, execution={"executor": "slurm"})
    result = pyama("run", str(config))
    assert result.returncode == 2
    assert "execution.executor: Input should be 'local' or 'dask'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_dask_not_installed_is_a_clear_error(tmp_path, two_fov_file):
    # A real interpreter in which `import distributed` fails, as on a machine without the extra.
    blocker = tmp_path / "no-dask"
    blocker.mkdir()
    (blocker / "distributed.py").write_text("raise ImportError(\"No module named 'distributed'\")\n")
    config = write_config(tmp_path, two_fov_file, execution={"executor": "dask"})
    result = pyama("run", str(config), env={"PYTHONPATH": str(blocker)})
    assert result.returncode == 2
    assert "install it with: pip install 'pyama-framework[dask]'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
