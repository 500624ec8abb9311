"""Every FOV runs with one native (BLAS/OpenMP/blosc) thread, in every executor."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import make_distribution, pyama, write_config

# A segmenter that records the native pools of the process it runs in, then segments as usual.
PROBE = """
import json, os
from pyama_framework import SegmenterRegistration, hookimpl

def segment_and_record(image):
    from threadpoolctl import threadpool_info
    import numcodecs.blosc
    from pyama_builtin.segmentation.logstd import segment_logstd
    from pyama_builtin.segmentation import LogStdParams
    pools = {"blas": sorted({p["num_threads"] for p in threadpool_info()}),
             "blosc": numcodecs.blosc.get_nthreads(), "pid": os.getpid()}
    with open(os.environ["PROBE_FILE"], "a") as f:
        f.write(json.dumps(pools) + "\\n")
    return segment_logstd(image, **LogStdParams().model_dump())

@hookimpl
def pyama_segmenters():
    yield SegmenterRegistration(name="probe", summary="records native pools", implementation=segment_and_record)
"""


def _run_with_probe(tmp_path, movie, execution: dict, extra_env: dict | None = None) -> list[dict]:
    site = make_distribution(tmp_path / "site", "lab-probe", "0.1", {"probe": "lab_probe"}, {"lab_probe.py": PROBE})
    probe = tmp_path / "pools.jsonl"
    config = write_config(tmp_path, movie, segmentation={"method": "probe", "params": {}}, execution=execution,
                          caching={"enabled": False}, cropping={"enabled": False})
    result = pyama("run", str(config), env={"PYTHONPATH": str(site), "PROBE_FILE": str(probe),
                                            "OPENBLAS_NUM_THREADS": "", "OMP_NUM_THREADS": "", **(extra_env or {})})
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in probe.read_text().splitlines()]


def test_local_workers_and_the_in_process_run_use_one_native_thread(tmp_path, two_fov_file):
    pools = _run_with_probe(tmp_path, two_fov_file, {"workers": 2})
    assert len({p["pid"] for p in pools}) == 2  # two worker processes
    assert all(p["blas"] == [1] and p["blosc"] == 1 for p in pools), pools
    (tmp_path / "one").mkdir()
    pools = _run_with_probe(tmp_path / "one", two_fov_file, {"workers": 1}, {"PYAMA_NATIVE_THREADS": "2"})
    assert all(p["blas"] == [2] and p["blosc"] == 2 for p in pools), pools  # the override is honoured


@pytest.mark.slow
def test_dask_local_cluster_workers_use_one_native_thread(tmp_path, two_fov_file):
    pytest.importorskip("distributed")
    pools = _run_with_probe(tmp_path, two_fov_file, {"executor": "dask", "workers": 2})
    assert all(p["blas"] == [1] and p["blosc"] == 1 for p in pools), pools


def test_limited_native_threads_restores_the_callers_pools():
    code = """
import json, numpy, scipy.linalg, numcodecs.blosc
from threadpoolctl import threadpool_info
from pyama_framework.executors.native_threads import limited_native_threads
before = [p["num_threads"] for p in threadpool_info()], numcodecs.blosc.get_nthreads()
with limited_native_threads(1):
    inside = [p["num_threads"] for p in threadpool_info()], numcodecs.blosc.get_nthreads()
after = [p["num_threads"] for p in threadpool_info()], numcodecs.blosc.get_nthreads()
print(json.dumps([before, inside, after]))
"""
    env = {"OPENBLAS_NUM_THREADS": "2", "BLOSC_NTHREADS": "2", "PATH": ""}
    before, inside, after = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                      env=env, check=True).stdout)
    assert set(before[0]) == {2} and before[1] == 2
    assert set(inside[0]) == {1} and inside[1] == 1
    assert after == before
