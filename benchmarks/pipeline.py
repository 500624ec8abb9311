"""Speed and memory of the whole pipeline on one large FOV (issue 3's benchmark).

Generates a 2048 x 2048, 600-cell synthetic FOV (phase + 1 fluorescence channel) as
OME-TIFF, runs the full pipeline with the built-in defaults in one worker, and reports per
stage the seconds per frame and the peak RSS while the stage ran, then the whole run.
Each T is measured in a fresh process so the peaks do not mix.

    python benchmarks/pipeline.py                 # T = 30 and T = 60
    python benchmarks/pipeline.py --frames 30     # one size only
    python benchmarks/pipeline.py --frames 30 --baseline /tmp/main --repeats 3
        # A/B: this code against another checkout's (its folder with pyama_framework/ and
        # pyama_builtin/), alternated in one session; medians per stage and their ratio
    python benchmarks/pipeline.py --size 1024 --pyama-core PATH --repeats 3
        # whole processes: `pyama run` against pyama-core 0.1.0's own functions run on the
        # same file (PATH: pyama-core/src of a checkout), alternated; medians and the ratio
    python benchmarks/pipeline.py --size 1024 --whole --baseline /tmp/main [--pyama-core PATH]
        # whole `pyama run` processes of this code and another checkout's, alternated
    python benchmarks/pipeline.py --frames 30 --bright [--baseline /tmp/main --repeats 3]
        # the same scene with bright cells (phase mirrored around its background: bright
        # bodies with a dark rim, as bright-field; logstd takes its top-hat body step)
    python benchmarks/pipeline.py --bright --check
        # segment the scene's first 3 frames (logstd, defaults), print SEG / Jaccard against
        # its truth and how many frames took the top-hat body step; no timing

Per stage it reports the wall seconds per frame (from the stage records) and the CPU
seconds per frame of the process while the stage ran (less sensitive to other jobs on a
shared machine).

pyama-core 0.1.0 on the same kind of FOV (shared/spec/pyama-core-facts.md): 353 s for the
pipeline (~11.8 s/frame), 3.0 GB peak RSS. Targets: <= 0.4 s/frame, <= 500 MB, flat in T.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

WORKLOADS = {2048: {"height": 2048, "width": 2048, "n_cells": 600},
             1024: {"height": 1024, "width": 1024, "n_cells": 150}}
# The stages pyama-core's published timing covers (its own segmentation, tracking,
# background and extraction functions); copy, crop and cache come on top.
CORE_STAGES = ("segment", "track", "background", "extract")


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def bench_scene(frames: int, size: int = 2048, bright: bool = False):
    """The benchmark's synthetic scene: dark cells (phase contrast), or with ``bright`` the
    same cells bright (:func:`mirrored_scene`)."""
    from pyama_framework.testing.synthetic import SyntheticScene

    scene = SyntheticScene(n_frames=frames, n_fluorescence=1, seed=7, **WORKLOADS[size])
    return mirrored_scene(scene) if bright else scene


def mirrored_scene(scene):
    """``scene`` with its phase image mirrored around the smooth phase background before the
    noise is added: dark bodies with a bright halo become bright bodies with a dark rim (the
    look of bright-field bacteria and of phase-contrast stem cells), debris bright specks;
    layout, truth and fluorescence unchanged. The frames are rendered as the generator's."""
    from dataclasses import replace

    import numpy as np

    render = scene._render

    def bright_render(t: int):
        exact = render(t)
        background = scene._backgrounds(t)[0]
        return replace(exact, phase=np.float32(2.0) * background - exact.phase)

    scene._render = bright_render
    return scene


def input_name(frames: int, size: int = 2048, bright: bool = False) -> str:
    name = f"bench_{frames}" if size == 2048 else f"bench_{size}_{frames}"
    return name + ("_bright" if bright else "") + ".ome.tif"


def make_input(folder: Path, frames: int, size: int = 2048, bright: bool = False) -> Path:
    from pyama_framework.testing.synthetic import write_ome_tiff

    path = folder / input_name(frames, size, bright)
    if not path.exists():
        write_ome_tiff(path, [bench_scene(frames, size, bright)])
    return path


def check_truth(args: argparse.Namespace, frames: int = 3) -> None:
    """Segment the scene's first ``frames`` frames with logstd's defaults; print SEG and the
    foreground Jaccard against its truth, and on how many frames the top-hat body ran."""
    import numpy as np

    from pyama_builtin.segmentation import logstd
    from pyama_framework.evaluation import score

    scene = bench_scene(frames, args.size, args.bright)
    name = "tophat_body" if hasattr(logstd, "tophat_body") else "_tophat_body"  # older checkouts
    tophat = getattr(logstd, name)
    calls = []

    def counted(image, sign, *rest, **kwargs):
        calls.append(sign)
        return tophat(image, sign, *rest, **kwargs)

    setattr(logstd, name, counted)
    try:
        found, truth = [], []
        for t in range(frames):
            frame = scene.frame(t)
            found.append(logstd.segment_logstd(frame.phase))
            truth.append(frame.labels.astype(np.int32))
    finally:
        setattr(logstd, name, tophat)
    result = score(np.stack(found), np.stack(truth))
    cells = "bright" if args.bright else "dark"
    print(f"{args.size} x {args.size}, {cells} cells, frames 0..{frames - 1}: SEG {result['SEG']:.3f}, "
          f"Jaccard {result['jaccard']:.3f}, objects found {result['objects_found']} of {result['objects_truth']}; "
          f"top-hat body on {len(calls)} of {frames} frames (sign {sorted(set(calls))})")


def run_config_data(input_path: Path, output: Path) -> dict:
    return {
        "input": str(input_path), "output": str(output),
        "channels": {"pc": {"channel": 0, "features": ["area", "aspect_ratio"]},
                     "fl": [{"channel": 1, "features": ["intensity_total", "intensity_mean"]}]},
        "extraction": {"min_frames": 1},
        "execution": {"workers": 1},
    }


def measure(input_path: Path, output: Path, frames: int) -> dict:
    """Run the pipeline in this process; sample RSS per stage."""
    from pyama_framework.config import RunConfig
    from pyama_framework.runner import execute, plan_run, prepare_output

    shutil.rmtree(output, ignore_errors=True)  # a complete output would only be resumed
    config = RunConfig.model_validate(run_config_data(input_path, output))
    current = {"stage": "setup"}
    cpu: dict[str, float] = {}
    last = {"stage": "setup", "cpu": time.process_time()}
    peaks: dict[str, float] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            stage = current["stage"]
            peaks[stage] = max(peaks.get(stage, 0.0), rss_mb())
            time.sleep(0.005)

    def progress(fov, stage, done, total):
        current["stage"] = stage
        if stage != last["stage"]:  # CPU seconds of the process, charged to the stage that ran
            now = time.process_time()
            cpu[last["stage"]] = cpu.get(last["stage"], 0.0) + now - last["cpu"]
            last.update(stage=stage, cpu=now)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    plan = plan_run(config)
    prepare_output(plan, overwrite=True)
    summary = execute(plan, progress)
    total = time.perf_counter() - started
    cpu[last["stage"]] = cpu.get(last["stage"], 0.0) + time.process_time() - last["cpu"]
    stop.set()
    sampler.join()
    outcome = summary.outcomes[0]
    assert outcome.status == "done", outcome.error
    records = output / "fov_000" / ".pyama"
    stages = {}
    for record in sorted(records.glob("*.json"), key=lambda p: p.stat().st_mtime):
        seconds = json.loads(record.read_text())["seconds"]
        stages[record.stem] = {"s_per_frame": seconds / frames, "peak_rss_mb": peaks.get(record.stem, 0.0),
                               "cpu_per_frame": cpu.get(record.stem, 0.0) / frames}
    return {"frames": frames, "stages": stages, "total_s": total, "s_per_frame": total / frames,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "cells": outcome.info.get("extract_cells")}


def run_pyama_core(src: Path, input_path: Path) -> None:
    """pyama-core 0.1.0's own segmentation, tracking, background and extraction functions
    on the file's first FOV, as its workflow calls them (whole stacks in memory). Its
    workflow reads through bioio; here tifffile reads the same pixels. The modules are
    loaded by file path: the packages' ``__init__`` files import cellpose and btrack."""
    import importlib.util

    import numpy as np
    import tifffile

    sys.path.insert(0, str(src))

    def function(relative: str, name: str):
        spec = importlib.util.spec_from_file_location(relative.replace("/", "_"), src / "pyama_core" / relative)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return getattr(module, name)

    segment_cell = function("processing/segmentation/logstd.py", "segment_cell")
    track_cell = function("processing/tracking/iou.py", "track_cell")
    estimate_background = function("processing/background/run.py", "estimate_background")
    from pyama_core.processing.extraction.run import extract_trace

    stack = tifffile.imread(input_path)  # (T, C, H, W) for one FOV
    phase, fluorescence = stack[:, 0].astype(np.float32), stack[:, 1].astype(np.float32)
    masks = np.zeros(phase.shape, dtype=bool)
    segment_cell(phase, masks)
    tracked = np.zeros(phase.shape, dtype=np.uint16)
    track_cell(masks, tracked)
    background = np.zeros(fluorescence.shape, dtype=np.float32)
    estimate_background(fluorescence, masks, background)
    times = np.arange(len(phase), dtype=np.float64) * 600.0
    traces = extract_trace(fluorescence, tracked, times, background)
    print(json.dumps({"cells": int(traces["cell"].nunique()) if len(traces) else 0}))


def timed(command: list[str], env: dict | None = None) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, the process and its children) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def whole_process(args: argparse.Namespace, frames: int) -> None:
    """Fresh `pyama run` processes, alternated: this code, ``--baseline``'s (if given) and
    pyama-core's four stages (if ``--pyama-core``) on the same file."""
    path = make_input(args.workdir, frames, args.size, args.bright)
    tail = "_bright" if args.bright else ""
    config = args.workdir / f"run_{args.size}_{frames}{tail}.yaml"
    output = args.workdir / f"cli_{args.size}_{frames}{tail}"
    config.write_text(json.dumps(run_config_data(path, output)))  # JSON is YAML
    pyama_run = [sys.executable, "-m", "pyama_framework", "run", str(config)]
    commands = {"this": (pyama_run, None)}
    if args.baseline:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(args.baseline), os.environ.get("PYTHONPATH", "")]))
        commands["base"] = (pyama_run, env)
    if args.pyama_core:
        commands["pyama-core"] = ([sys.executable, __file__, "--core-child", str(path),
                                   "--pyama-core", str(args.pyama_core)], None)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, (command, env) in commands.items():
            shutil.rmtree(output, ignore_errors=True)  # a complete output would only be resumed
            runs[name].append(timed(command, env))
    print(f"\n{args.size} x {args.size}, {WORKLOADS[args.size]['n_cells']} cells, T = {frames}, whole processes, "
          f"medians of {args.repeats} alternated runs (wall s; CPU s, process and children)")
    wall = {name: statistics.median(w for w, _ in r) for name, r in runs.items()}
    for name, r in runs.items():
        cpu = statistics.median(c for _, c in r)
        label = {"this": "pyama run, this code", "base": f"pyama run, {args.baseline}",
                 "pyama-core": "pyama-core 0.1.0, its four stages"}[name]
        print(f"{label:<40} {wall[name]:6.2f} s  CPU {cpu:6.2f} s   runs: {', '.join(f'{w:.2f}' for w, _ in r)}")
    if "base" in wall:
        print(f"this / base: {wall['this'] / wall['base']:.2f}")
    if "pyama-core" in wall:
        print(f"ratio pyama-core / this: {wall['pyama-core'] / wall['this']:.1f}x"
              + (f" (base: {wall['pyama-core'] / wall['base']:.1f}x)" if "base" in wall else ""))


def child_report(args: argparse.Namespace, frames: int, code: Path | None) -> dict:
    """One measured run in a fresh process; ``code``: a checkout to run instead of this one."""
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(code), env.get("PYTHONPATH", "")])
    label = "base" if code is not None else "this"
    result = subprocess.run([sys.executable, __file__, "--child", str(frames), "--size", str(args.size),
                             "--workdir", str(args.workdir), "--label", label]
                            + (["--bright"] if args.bright else []),
                            capture_output=True, text=True, check=True, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def print_report(report: dict, frames: int, size: int, bright: bool = False) -> None:
    print(f"\n{size} x {size}, {WORKLOADS[size]['n_cells']} {'bright' if bright else 'dark'} cells, T = {frames}: "
          f"{report['cells']} cells traced")
    print(f"{'stage':<12}{'s/frame':>10}{'CPU s/frame':>13}{'peak RSS MB':>14}")
    for stage, row in report["stages"].items():
        print(f"{stage:<12}{row['s_per_frame']:>10.3f}{row.get('cpu_per_frame', 0.0):>13.3f}{row['peak_rss_mb']:>14.0f}")
    core = sum(report["stages"][s]["s_per_frame"] for s in CORE_STAGES if s in report["stages"])
    print(f"{'core stages':<12}{core:>10.3f}{'':>27}   (segment+track+background+extract: "
          f"what pyama-core's 11.8 s/frame covers)")
    print(f"{'pipeline':<12}{report['s_per_frame']:>10.3f}{'':>13}{report['peak_rss_mb']:>14.0f}"
          f"   (all stages, {report['total_s']:.1f} s; pyama-core: 3000 MB)")


def compare(args: argparse.Namespace, frames: int) -> None:
    """This code against ``--baseline``, alternated; medians per stage."""
    runs = {"base": [], "this": []}
    for _ in range(args.repeats):
        runs["base"].append(child_report(args, frames, args.baseline))
        runs["this"].append(child_report(args, frames, None))
    stages = list(dict.fromkeys(s for r in runs["base"] + runs["this"] for s in r["stages"]))

    def median(key: str, stage: str | None, field: str) -> float:
        if stage is None:
            return statistics.median(r[field] for r in runs[key])
        return statistics.median(r["stages"].get(stage, {}).get(field, 0.0) for r in runs[key])

    print(f"\n{args.size} x {args.size}, {'bright' if args.bright else 'dark'} cells, T = {frames}: "
          f"medians of {args.repeats} alternated runs "
          f"(base = {args.baseline})")
    print(f"{'stage':<12}{'base s/fr':>10}{'this s/fr':>10}{'ratio':>7}{'base CPU':>10}{'this CPU':>10}{'ratio':>7}")
    for stage in stages + [None]:
        b, t = median("base", stage, "s_per_frame"), median("this", stage, "s_per_frame")
        bc = median("base", stage, "cpu_per_frame") if stage else 0.0
        tc = median("this", stage, "cpu_per_frame") if stage else 0.0
        ratio = lambda x, y: f"{y / x:>7.2f}" if x else f"{'-':>7}"
        print(f"{stage or 'pipeline':<12}{b:>10.3f}{t:>10.3f}{ratio(b, t)}{bc:>10.3f}{tc:>10.3f}{ratio(bc, tc)}")
    print(f"{'peak RSS MB':<12}{median('base', None, 'peak_rss_mb'):>10.0f}{median('this', None, 'peak_rss_mb'):>10.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="*", default=[30, 60])
    parser.add_argument("--size", type=int, choices=sorted(WORKLOADS), default=2048,
                        help="frame side: 2048 (600 cells) or 1024 (150 cells)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "pyama-bench")
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with, alternated")
    parser.add_argument("--pyama-core", type=Path, help="pyama-core/src of a pyama checkout: whole-process comparison")
    parser.add_argument("--whole", action="store_true",
                        help="time whole `pyama run` processes (with --baseline: against that checkout's)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bright", action="store_true",
                        help="the same scene with bright cells (phase mirrored around its background)")
    parser.add_argument("--check", action="store_true",
                        help="print SEG / Jaccard of logstd on the scene's first 3 frames, and whether "
                             "the top-hat body step ran; no timing")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--label", default="this", help=argparse.SUPPRESS)
    parser.add_argument("--core-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.core_child:
        run_pyama_core(args.pyama_core, args.core_child)
        return
    if args.check:
        check_truth(args)
        return
    if args.child:
        path = make_input(args.workdir, args.child, args.size, args.bright)
        output = args.workdir / f"out_{args.label}_{args.size}_{args.child}{'_bright' if args.bright else ''}"
        print(json.dumps(measure(path, output, args.child)))
        return
    for frames in args.frames:
        make_input(args.workdir, frames, args.size, args.bright)  # generated outside the measured process
        if args.pyama_core or args.whole:
            whole_process(args, frames)
        elif args.baseline:
            compare(args, frames)
        else:
            print_report(child_report(args, frames, None), frames, args.size, args.bright)


if __name__ == "__main__":
    main()
