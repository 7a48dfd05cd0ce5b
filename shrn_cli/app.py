"""The ``shrn`` command: a Typer app whose commands live in ``shrn_cli/commands``."""
from __future__ import annotations

from typing import Optional

import typer

from shrn_core import __version__

from .commands import eval as eval_cmd
from .commands import example as example_cmd
from .commands import face as face_cmd
from .commands import inpaint as inpaint_cmd
from .commands import reconstruct as reconstruct_cmd
from .commands import run as run_cmd
from .commands import segment as segment_cmd
from .commands import synth as synth_cmd

app = typer.Typer(
    name="shrn",
    help="Occlusion-robust 3D face reconstruction: segment -> inpaint -> reconstruct -> eval.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"shrn {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Each command writes documented intermediate files (docs/formats.md) so stages chain in pipelines."""


# In the order a user meets them: help lists commands as registered.
face_cmd.register(app)
segment_cmd.register(app)
inpaint_cmd.register(app)
reconstruct_cmd.register(app)
run_cmd.register(app)
eval_cmd.register(app)
synth_cmd.register(app)
example_cmd.register(app)


def main() -> None:
    app()
