"""No heavy import at discovery: import the plugin's entry-point module in a fresh process,
as ``pyama plugins list`` does, and report what it pulled in and how long it took."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from importlib import metadata as importlib_metadata

from ...types import Registration
from ._support import fail

#: Top-level modules too heavy to import while discovering plugins: they belong in the
#: implementation module named by ``implementation="module:attr"``.
HEAVY_MODULES = frozenset({
    "torch", "tensorflow", "keras", "jax", "jaxlib", "cellpose", "stardist", "csbdeep", "onnxruntime",
    "cupy", "numba", "llvmlite", "cv2", "napari", "vispy", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6",
    "scipy", "skimage", "sklearn", "pandas", "dask", "distributed", "zarr", "matplotlib", "tifffile",
    "nd2", "bioio", "czifile", "pylibCZIrw", "imagecodecs", "h5py", "SimpleITK", "itk",
})
IMPORT_BUDGET_S = 1.0

# Runs in the fresh process: load what the host has loaded before discovery, then discover
# the one entry point (import + hook calls) and list the top-level modules that appeared.
_PROBE = """
import json, sys, time
from importlib.metadata import EntryPoint
import pyama_framework.registry as registry
before = set(sys.modules)
start = time.process_time()  # CPU time: the budget must not depend on how loaded the machine is
found = registry.discover([EntryPoint(name="probe", value=sys.argv[1], group=registry.ENTRY_POINT_GROUP)],
                          strict=False)
seconds = time.process_time() - start
new = sorted({name.split(".")[0] for name in set(sys.modules) - before})
unloadable = [f.error for f in found.failures if not found.entries]  # import failed: nothing collected
print(json.dumps({"seconds": seconds, "new": new, "failures": unloadable}))
"""


def entry_point_of(registration: Registration) -> str:
    """The ``pyama.plugins`` entry point (``"module"`` or ``"module:attr"``) that provides
    ``registration`` in the installed environment."""
    from ...registry import ENTRY_POINT_GROUP, discover

    registry = discover(strict=False)
    provided = registry.entries.get(registration.kind, {}).get(registration.name, [])
    mine = [p for p in provided if p.registration.implementation == registration.implementation]
    if not mine:
        fail(registration, "is not provided by any installed 'pyama.plugins' entry point, so pyama cannot "
                           "find it; install the package (pip install -e .) or pass plugin_module='pkg.plugin'")
    dist_name, _, ep_name = mine[0].plugin.partition(":")
    for ep in importlib_metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        if ep.name == ep_name and (dist is None or dist.metadata["Name"] == dist_name):
            return ep.value
    fail(registration, f"entry point '{ep_name}' of {dist_name} not found")  # pragma: no cover


@functools.lru_cache(maxsize=64)  # one probe per entry point and process (it serves many plugins)
def discovery_cost(entry_point: str) -> dict:
    """``{"seconds", "new", "failures"}`` of discovering ``entry_point`` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    result = subprocess.run([sys.executable, "-c", _PROBE, entry_point], capture_output=True, text=True,
                            env=env, timeout=300)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"discovering {entry_point} in a fresh process failed: {last}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def check_light_discovery(registration: Registration, plugin_module: str | None = None,
                          budget_s: float = IMPORT_BUDGET_S) -> None:
    """Discovering the plugin imports no heavy module and stays within ``budget_s`` seconds."""
    entry_point = plugin_module or entry_point_of(registration)
    try:
        cost = discovery_cost(entry_point)
    except RuntimeError as exc:
        fail(registration, str(exc))
    if cost["failures"]:  # other registrations of the module being malformed is their own check's business
        fail(registration, f"discovery of {entry_point} failed: {cost['failures'][0]}")
    heavy = [m for m in cost["new"] if m in HEAVY_MODULES]
    if heavy:
        fail(registration, f"plugin module {entry_point} imports {', '.join(heavy)} at discovery (every "
                           f"'pyama plugins list' pays for it); import them inside the implementation module "
                           f"named by implementation='module:attr'")
    if cost["seconds"] > budget_s:
        fail(registration, f"discovering {entry_point} took {cost['seconds']:.2f} s of CPU (budget {budget_s:g} s), "
                           f"importing {', '.join(cost['new'][:12])}; move heavy imports into the "
                           f"implementation module")
