"""The ``pyama`` command line (typer).

Exit codes: 0 success; 1 some FOVs failed (the others completed); 2 bad input (config,
plugin, file or output folder; nothing was processed); 130 interrupted (rerun to resume).
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import PyamaError
from .location import check_output, is_url, output_root

class _Program(typer.Typer):
    """The ``pyama`` app; calling it (the console script, ``python -m pyama_framework``) runs
    it as the whole process, which lets a command skip work that only matters to a process
    that goes on living (tests invoke the commands through CliRunner, not through this call).

    At exit the interpreter's final garbage collection walks every object the imported
    libraries made (numpy, scipy, pandas, zarr, pydantic: ~0.2-0.4 s at the end of each
    ``pyama run``, measured). Everything the commands write is closed explicitly before
    they return, so those objects are frozen instead: the process exits without walking them.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        global _WHOLE_PROCESS
        _WHOLE_PROCESS = True
        atexit.register(gc.freeze)  # registered first, so it runs last of the exit handlers
        return super().__call__(*args, **kwargs)


_WHOLE_PROCESS = False  # set when the app runs as the process (see _Program)

app = _Program(add_completion=False, no_args_is_help=True,
               help="pyama: per-cell traces from time-lapse microscopy, with pluggable algorithms.")
plugins_app = typer.Typer(no_args_is_help=True, help="List, describe and diagnose plugins.")
config_app = typer.Typer(no_args_is_help=True, help="Validate, describe and create run configs.")
export_app = typer.Typer(no_args_is_help=True, help="Write a run's results in the formats of other tools.")
app.add_typer(plugins_app, name="plugins")
app.add_typer(config_app, name="config")
app.add_typer(export_app, name="export")

out = Console()
err = Console(stderr=True)

EXIT_FOV_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 1, 2, 130


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> None:
    for line in str(message).splitlines() or [""]:
        err.print(f"[bold red]error:[/] {escape(line)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


# ---------------------------------------------------------------------- run
def _progress_printer():
    """A rich progress display on a terminal, plain log lines otherwise."""
    if err.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=err, transient=False)
        tasks: dict[tuple[int, str], Any] = {}

        def update(fov: int, stage: str, done: int, total: int) -> None:
            key = (fov, stage)
            if key not in tasks:
                label = f"fov {fov:03d} {stage:<10}" + (" (already complete)" if total == 0 else "")
                tasks[key] = progress.add_task(label, total=total or 1)
            progress.update(tasks[key], completed=done if total else 1, total=total or 1)

        return progress, update

    def log(fov: int, stage: str, done: int, total: int) -> None:
        if total == 0:
            err.print(f"fov {fov:03d}: {stage} already complete", highlight=False)
        elif done == total:
            err.print(f"fov {fov:03d}: {stage} done", highlight=False)

    return None, log


def _run(config_path: Path, overrides: dict[str, Any], overwrite: bool, workers: Optional[int]) -> None:
    from contextlib import ExitStack

    from .config import load_config
    from .executors import open_executor
    from .lease import acquire_lease
    from .runner import plan_run, prepare_output

    # Order: take the output's lease first (a second run on it is refused before the slow
    # checks); validate; connect the executor; then write. On any error the lease is
    # released and a folder it created is removed: nothing is left behind.
    session = ExitStack()
    try:
        config = load_config(config_path, overrides)
        if workers is not None:
            config = config.model_copy(update={"execution": config.execution.model_copy(update={"workers": workers})})
        check_output(config.output, config.storage_options)  # missing bucket, refused credentials: before any write
        lease = session.enter_context(acquire_lease(config.output, config.storage_options,
                                                    on_lost=_stop_like_ctrl_c))
        plan = plan_run(config)
        executor = session.enter_context(open_executor(plan))
        prepare_output(plan, overwrite)
    except PyamaError as exc:
        session.close()
        _fail(str(exc))
        return
    if _WHOLE_PROCESS:
        # Most libraries the run needs are imported by now (the plugins' own modules load
        # as their stages start); their objects live as long as the process, so later
        # collections need not walk them (a full collection during a 1024 x 1024 run took
        # 0.15 s, 0.04 s after this).
        gc.freeze()
    with session:
        _execute_and_report(plan, executor, lease)


def _stop_like_ctrl_c() -> None:
    """Another run took this run's lease over: stop at the next frame boundary, as on Ctrl-C
    (a real SIGINT, so that a main thread blocked in a wait wakes up)."""
    import signal

    os.kill(os.getpid(), signal.SIGINT)


def _execute_and_report(plan: Any, executor: Any, lease: Any = None) -> None:
    err.print(f"{plan.config.input.name}: {len(plan.fovs)} FOV(s), {plan.metadata.n_frames} frames, "
              f"reader '{plan.reader.registration.name}' -> {plan.config.output}", highlight=False)
    if executor.name != "local":
        err.print(f"executor: {executor.description}", highlight=False, soft_wrap=True)
    display, update = _progress_printer()
    if display is not None:
        with display:
            summary = executor.run(plan, update)
    else:
        summary = executor.run(plan, update)
    if lease is not None and lease.lost.is_set():
        from .lease import lost_message

        _fail(lost_message(lease), EXIT_FOV_FAILED)
    for outcome in summary.outcomes:
        for warning in outcome.warnings:
            err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    done = [o for o in summary.outcomes if o.status == "done"]
    for outcome in summary.failed:
        log = output_root(plan.config.output) / f"fov_{outcome.fov:03d}" / "error.log"
        err.print(f"[bold red]FOV {outcome.fov} failed:[/] {escape(outcome.error)} (details in {escape(str(log))})",
                  highlight=False, soft_wrap=True)
    if summary.interrupted:
        err.print(f"interrupted: {len(done)} of {len(plan.fovs)} FOV(s) complete; run the same command again to resume")
        raise typer.Exit(EXIT_INTERRUPTED)
    err.print(f"{len(done)} of {len(plan.fovs)} FOV(s) complete; results in {plan.config.output}", highlight=False)
    if summary.failed:
        raise typer.Exit(EXIT_FOV_FAILED)


@app.command()
def run(
    config: Path = typer.Argument(..., help="Run config (YAML)"),
    input: Optional[Path] = typer.Option(None, "--input", "-i", help="Override 'input'"),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Override 'output' (a folder or an fsspec URL)"),
    fovs: Optional[str] = typer.Option(None, "--fovs", help="Override 'fovs', e.g. '0-5, 7'"),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1, help="Override execution.workers"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace results of a different config in OUTPUT"),
) -> None:
    """Run the pipeline described by CONFIG (resumes an interrupted run)."""
    overrides = {"input": str(input.resolve()) if input else None,
                 "output": (output if is_url(output) else str(Path(output.removeprefix("file://")).resolve())) if output else None, "fovs": fovs}
    _run(config, overrides, overwrite, workers)


# ------------------------------------------------------------------ plugins
def _registry():
    from .registry import get_registry

    try:
        return get_registry()
    except PyamaError as exc:
        _fail(str(exc))


@plugins_app.command("list")
def plugins_list(as_json: bool = typer.Option(False, "--json", help="Machine-readable output")) -> None:
    """Every plugin with its kind, distribution, version and status."""
    registry = _registry()
    rows = []
    for provided in registry.all_provided():
        reg = provided.registration
        duplicates = registry.entries[reg.kind][reg.name]
        status = "ok" if len(duplicates) == 1 else "conflict: also in " + ", ".join(
            p.distribution for p in duplicates if p is not provided)
        rows.append({"kind": reg.kind, "name": reg.name, "summary": reg.summary,
                     "distribution": provided.distribution, "version": provided.version, "status": status})
    for failure in registry.failures:
        rows.append({"kind": "-", "name": failure.plugin, "summary": "",
                     "distribution": failure.distribution, "version": failure.version,
                     "status": f"error: {failure.error}"})
    if as_json:
        print(json.dumps(rows, indent=1))
        return
    table = Table(box=None, pad_edge=False)
    fixed = {"kind": [r["kind"] for r in rows], "name": [r["name"] for r in rows],
             "provided by": [f"{r['distribution']} {r['version']}" for r in rows],
             "status": [r["status"] if r["status"] == "ok" else "error" for r in rows]}
    for header, values in fixed.items():  # identity columns never wrap; the summary gets the rest
        table.add_column(header, no_wrap=True, min_width=max([len(header), *map(len, values)]))
    table.add_column("summary", no_wrap=True, overflow="ellipsis", ratio=1)
    for r in rows:
        style = None if r["status"] == "ok" else "red"
        status, summary = ("ok", r["summary"]) if r["status"] == "ok" else ("error", r["status"].removeprefix("error: "))
        table.add_row(r["kind"], escape(r["name"]), escape(f"{r['distribution']} {r['version']}"),
                      status, escape(summary), style=style)
    out.print(table)
    out.print("details: pyama plugins info NAME    machine-readable: pyama plugins list --json", highlight=False)


def _params_rows(model: type) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    rows = []
    for name, prop in schema.get("properties", {}).items():
        bounds = [f"{sym} {prop[key]}" for key, sym in (("minimum", ">="), ("exclusiveMinimum", ">"),
                                                          ("maximum", "<="), ("exclusiveMaximum", "<")) if key in prop]
        kind = prop.get("type") or " | ".join(p.get("type", "?") for p in prop.get("anyOf", [])) or "?"
        if "enum" in prop:
            kind = " | ".join(map(str, prop["enum"]))
        rows.append({"name": name, "type": kind, "default": prop.get("default"),
                     "bounds": ", ".join(bounds), "description": prop.get("description", "")})
    return rows


@plugins_app.command("info")
def plugins_info(name: str = typer.Argument(..., help="Plugin name, e.g. logstd"),
                 kind: Optional[str] = typer.Option(None, "--kind", help="Restrict to one kind")) -> None:
    """Summary and parameters (defaults, bounds, descriptions) of a plugin."""
    from .types import KINDS, FeatureRegistration, FittingModelRegistration, ReaderRegistration

    registry = _registry()
    kinds = [kind] if kind else list(KINDS)
    found = [(k, registry.entries.get(k, {}).get(name)) for k in kinds if registry.entries.get(k, {}).get(name)]
    if not found:
        everything = sorted({n for k in KINDS for n in registry.entries.get(k, {})})
        import difflib

        close = difflib.get_close_matches(name, everything, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        _fail(f"no plugin named '{name}'{hint} See 'pyama plugins list'.")
    for k, provided_list in found:
        for provided in provided_list:
            reg = provided.registration
            out.print(f"[bold]{escape(reg.name)}[/] ({k}) from {escape(provided.distribution)} {provided.version}")
            out.print(f"  {escape(reg.summary)}", highlight=False)
            if isinstance(reg, FeatureRegistration):
                out.print(f"  channel kind: {reg.channel_kind}; column: {reg.column}_ch_<channel>; "
                          f"fast path: {'yes' if reg.frame_implementation else 'no'}")
            if isinstance(reg, ReaderRegistration):
                out.print(f"  suffixes: {', '.join(reg.suffixes) or '(none: select by name)'}")
            if isinstance(reg, FittingModelRegistration):
                out.print(f"  time unit: {reg.time_unit} (the traces' minutes are converted); Jacobian: "
                          f"{'yes' if reg.jacobian else 'numerical'}; initial guess: "
                          f"{'yes' if reg.initial_guess else 'defaults'}; 'default' = initial or fixed value")
            rows = _params_rows(reg.params)
            if not rows:
                out.print("  params: none")
                continue
            table = Table("param", "type", "default", "bounds", "description")
            for r in rows:
                table.add_row(r["name"], escape(str(r["type"])), escape(json.dumps(r["default"])), r["bounds"],
                              escape(r["description"]))
            out.print(table)


@plugins_app.command("doctor")
def plugins_doctor(file: Path = typer.Argument(..., help="A microscopy file")) -> None:
    """Which readers accept FILE, and why each other one does not."""
    from .readers import ReaderError, feasibility_report, select_reader

    registry = _registry()
    table = Table("reader", "verdict", "reason")
    try:
        verdicts = feasibility_report(file, registry)
    except PyamaError as exc:
        _fail(str(exc))
        return
    for v in verdicts:
        table.add_row(v.name, "[green]accepts[/]" if v.accepted else "[red]refuses[/]", escape(v.reason))
    out.print(table)
    try:
        chosen = select_reader(file, registry)
        out.print(f"chosen reader: [bold]{chosen.name}[/]")
    except ReaderError as exc:
        _fail(str(exc))


# ------------------------------------------------------------------- config
@config_app.command("validate")
def config_validate(config: Path = typer.Argument(..., help="Run config (YAML)"),
                    check_input: bool = typer.Option(True, help="Also open the input file and check channels/FOVs")) -> None:
    """Validate CONFIG, every plugin name and params, and (by default) the input file."""
    from .config import load_config, resolve_plugins
    from .runner import plan_run

    try:
        loaded = load_config(config)
        if check_input:
            plan = plan_run(loaded)
            out.print(f"ok: {len(plan.fovs)} FOV(s), {plan.metadata.n_frames} frames, reader '{plan.reader.registration.name}'")
        else:
            resolve_plugins(loaded, _registry())
            out.print("ok")
    except PyamaError as exc:
        _fail(str(exc))


@config_app.command("schema")
def config_schema() -> None:
    """The JSON schema of the config file."""
    from .config import RunConfig

    print(json.dumps(RunConfig.model_json_schema(), indent=1))


@config_app.command("init")
def config_init(path: Path = typer.Argument(Path("pyama.yaml"), help="Where to write the template"),
                force: bool = typer.Option(False, "--force", help="Replace an existing file")) -> None:
    """Write a commented config template with the built-in defaults."""
    from .templates import CONFIG_TEMPLATE

    if path.exists() and not force:
        _fail(f"{path} exists; pass --force to replace it")
    path.write_text(CONFIG_TEMPLATE)
    out.print(f"wrote {path}; edit 'input', 'output' and 'channels', then: pyama run {path}")


# --------------------------------------------------------------------- demo
@app.command()
def demo(out_dir: Path = typer.Argument(Path("pyama-demo"), help="Folder for the demo data and results"),
         fovs: int = typer.Option(3, min=1, max=50, help="Number of synthetic FOVs"),
         frames: int = typer.Option(16, min=2, max=500, help="Frames per FOV"),
         workers: int = typer.Option(2, min=1, help="FOVs processed in parallel"),
         kinetics: Optional[str] = typer.Option(None, help="Fitting model the cells' fluorescence follows "
                                                              "(e.g. maturation), for pyama fit")) -> None:
    """Write a small synthetic time-lapse with ground truth and run the full pipeline on it."""
    from .demo import write_demo

    try:
        config_path = write_demo(out_dir, n_fovs=fovs, n_frames=frames, workers=workers, kinetics=kinetics)
    except (PyamaError, ValueError, KeyError) as exc:
        _fail(str(exc))
        return
    err.print(f"demo data and config written to {out_dir}", highlight=False)
    _run(config_path, {}, overwrite=True, workers=None)
    from .demo import report_accuracy

    for line in report_accuracy(out_dir):
        out.print(line, highlight=False)
    from .demo import next_steps

    for line in next_steps(out_dir):
        out.print(line, highlight=False, soft_wrap=True)


# The analysis after the pipeline (merge, fit, plot): each module registers its commands on
# ``app`` when imported, and imports its heavy dependencies only inside the command.
from . import cli_fit, cli_merge, cli_plot  # noqa: E402,F401
from . import cli_plugins_new  # noqa: E402,F401
from . import cli_evaluate  # noqa: E402,F401
from . import cli_report  # noqa: E402,F401
from . import cli_storage  # noqa: E402,F401


def main() -> None:  # pragma: no cover - console script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
