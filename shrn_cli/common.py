"""What every command shares: options, config merging, input expansion, progress, errors, output."""
from __future__ import annotations

import glob
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from shrn_core.config import load_config
from shrn_core.errors import InputError, ShrnError
from shrn_core.formats.image import IMAGE_EXTENSIONS

stderr = Console(stderr=True)
log = logging.getLogger("shrn")

# Option declarations reused by every command so they read the same everywhere.
OutOption = typer.Option(None, "--out", "-o", help="Output folder (default: next to each input).")
DeviceOption = typer.Option("auto", "--device", help="auto, cpu or cuda.")
ConfigOption = typer.Option(None, "--config", help="YAML file with option values (command line wins).")
JsonOption = typer.Option(False, "--json", help="Print one JSON object per input on stdout.")
OverwriteOption = typer.Option(False, "--overwrite", help="Recompute outputs that already exist.")
QuietOption = typer.Option(False, "--quiet", "-q", help="Only errors on stderr.")
VerboseOption = typer.Option(False, "--verbose", "-v", help="Debug logging on stderr.")
MaxPixelsOption = typer.Option(None, "--max-pixels", help="Refuse images above this many pixels, checked from the "
                               "file header before decoding (default 100000000).")


@dataclass
class ItemResult:
    """What one input produced: named output paths plus any extra JSON-able facts."""

    outputs: dict[str, Path] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False  # outputs existed and --overwrite was not given


@dataclass
class RunOptions:
    out: Optional[Path]
    json: bool
    quiet: bool
    verbose: bool

    def out_dir_for(self, input_path: Path) -> Path:
        return Path(self.out) if self.out is not None else Path(input_path).parent


def setup_logging(quiet: bool, verbose: bool) -> None:
    _silence_native_stderr()
    level = logging.ERROR if quiet else logging.DEBUG if verbose else logging.INFO
    root = logging.getLogger("shrn")
    root.handlers.clear()
    handler = RichHandler(console=stderr, show_time=False, show_path=False, markup=False)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    # Python warnings (numpy overflow, PIL tags, ...) are for developers: shown with -v only.
    logging.captureWarnings(True)
    warnings_log = logging.getLogger("py.warnings")
    warnings_log.handlers[:] = [handler]
    warnings_log.setLevel(logging.DEBUG if verbose else logging.CRITICAL)
    warnings_log.propagate = False


def begin(ctx: typer.Context, command: str, values: dict[str, Any]) -> tuple[dict[str, Any], RunOptions]:
    """What every command does first: merge the YAML config under the command-line values, set up
    logging, and collect the output conventions. ``values`` is the command's ``locals()``."""
    values = {k: v for k, v in values.items() if k not in ("ctx", "config")}
    opts = apply_config(ctx, command, ctx.params.get("config"), values)
    setup_logging(opts["quiet"], opts["verbose"])
    if "max_pixels" in opts:
        from shrn_core.formats.image import set_max_pixels

        set_max_pixels(None)  # a failed setting below must not leave an earlier command's value
        try:
            set_max_pixels(opts["max_pixels"])
        except ShrnError as err:
            fail(err)
    return opts, RunOptions(out=opts["out"], json=opts["json_out"], quiet=opts["quiet"], verbose=opts["verbose"])


def _silence_native_stderr() -> None:
    """Native libraries (mediapipe's graphs, TFLite) print warnings straight to fd 2 from worker
    threads. The CLI owns its process, so it moves Python's stderr to a copy of fd 2 and points fd 2
    itself at /dev/null. Set SHRN_NATIVE_LOGS=1 to see the native messages."""
    import os

    if os.environ.get("SHRN_NATIVE_LOGS") or getattr(_silence_native_stderr, "done", False):
        return
    try:
        python_fd = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:
        return
    sys.stderr = os.fdopen(python_fd, "w", buffering=1, encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
                           errors="backslashreplace")
    stderr.file = sys.stderr
    _silence_native_stderr.done = True


def apply_config(ctx: typer.Context, command: str, config_path: Optional[Path], values: dict[str, Any]) -> dict[str, Any]:
    """Fill options the user did not give on the command line from the YAML config."""
    try:
        config = load_config(config_path, command)
    except ShrnError as err:
        fail(err)
    unknown = sorted(set(config) - set(values))
    if unknown:
        fail(InputError(f"unknown option(s) for 'shrn {command}': {', '.join(unknown)}", config_path))
    merged = dict(values)
    params = {param.name: param for param in ctx.command.params}
    for key, value in config.items():
        source = ctx.get_parameter_source(key)
        if source is None or source.name in ("DEFAULT", "DEFAULT_MAP"):
            merged[key] = _convert(ctx, params.get(key), key, value, config_path)
    return merged


def _convert(ctx: typer.Context, param, key: str, value: Any, config_path: Optional[Path]) -> Any:
    """A config value checked and converted exactly as the same value on the command line would be."""
    if param is None or value is None:
        return value
    many = getattr(param, "multiple", False) or getattr(param, "nargs", 1) == -1
    if isinstance(value, list) and not many:
        fail(InputError(f"option {key!r} takes one value, not a list", config_path))
    if many and not isinstance(value, list):
        value = [value]
    try:
        return param.process_value(ctx, value)
    except (typer.BadParameter, ValueError, TypeError) as exc:
        message = (getattr(exc, "message", None) or str(exc) or "invalid value").splitlines()[0]
        fail(InputError(f"option {key!r}: {message}", config_path))


def fail(err: ShrnError) -> None:
    """Print one line on stderr and exit with the error's code."""
    stderr.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
    raise typer.Exit(err.exit_code)


def expand_inputs(items: Iterable[str | Path], extensions: set[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """Files stay as given; folders give their image files (sorted, not recursive); globs expand."""
    found: list[Path] = []
    for item in items:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in extensions and not _is_intermediate(p))
            if not files:
                raise InputError("folder holds no input files", path)
            found.extend(files)
        elif not path.exists() and any(ch in text for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
            if not matches:
                raise InputError("pattern matches no file", text)
            found.extend(m for m in matches if m.is_file())
        else:
            found.append(path)
    return found


def _is_intermediate(path: Path) -> bool:
    parts = path.name.split(".")
    return len(parts) >= 3  # <stem>.<kind>.<ext> files are shrn outputs, not photos


def make_progress(label: str, disable: bool = False) -> Progress:
    """The progress bar every command shows on stderr for work over several inputs."""
    return Progress(
        TextColumn(f"[bold]{label}[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TimeRemainingColumn(), TextColumn("{task.description}"), console=stderr, transient=False, disable=disable,
    )


def process_inputs(
    inputs: list[Path],
    worker: Callable[[Path], ItemResult],
    options: RunOptions,
    label: str,
) -> int:
    """Run ``worker`` on each input, keep going past failures, print outputs, return the exit code."""
    failures: list[tuple[Path, ShrnError]] = []
    progress = make_progress(label, disable=len(inputs) <= 1 or options.quiet)
    with progress:
        task = progress.add_task("", total=len(inputs))
        for path in inputs:
            progress.update(task, description=Path(path).name)
            try:
                result = worker(Path(path))
            except ShrnError as err:
                failures.append((Path(path), err))
                stderr.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
                _emit_failure(path, err, options)
            else:
                if result.skipped and not options.quiet:
                    log.info("%s: outputs exist, kept (use --overwrite to recompute)", path)
                _emit(path, result, options)
            progress.advance(task)
    if failures and len(inputs) > 1:
        _print_failure_summary(failures, len(inputs))
    if not failures:
        return 0
    return failures[0][1].exit_code if len(inputs) == 1 else 1


def _emit(path: Path, result: ItemResult, options: RunOptions) -> None:
    if options.json:
        record = {"input": str(path), "ok": True, "skipped": result.skipped,
                  "outputs": {k: str(v) for k, v in result.outputs.items()}, **result.info}
        sys.stdout.write(json.dumps(record, default=_json_default) + "\n")
    else:
        for value in result.outputs.values():
            sys.stdout.write(f"{value}\n")
    sys.stdout.flush()


def _emit_failure(path: Path, err: ShrnError, options: RunOptions) -> None:
    if options.json:
        record = {"input": str(path), "ok": False, "error": str(err), "exit_code": err.exit_code}
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()


def _print_failure_summary(failures: list[tuple[Path, ShrnError]], total: int) -> None:
    from rich.table import Table

    table = Table(title=f"{len(failures)} of {total} inputs failed", title_justify="left")
    table.add_column("input")
    table.add_column("problem")
    for path, err in failures:
        message = str(err)
        prefix = f"{err.path}: " if err.path else ""
        table.add_row(str(path), message[len(prefix):] if message.startswith(prefix) else message)
    stderr.print(table)


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def outputs_exist(paths: Iterable[Path], overwrite: bool) -> bool:
    """True when every output is already there and the user did not ask to recompute."""
    return not overwrite and all(Path(p).is_file() for p in paths)
