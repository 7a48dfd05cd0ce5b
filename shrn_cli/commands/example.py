"""``shrn example``: write a face photo that ships with a dependency (no download needed)."""
from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("example")(example)


def example(path: Path = typer.Argument(Path("astronaut.png"), help="Where to write the PNG.")) -> None:
    """Write scikit-image's bundled astronaut portrait, a ready input for every command."""
    from shrn_core.errors import ShrnError
    from shrn_core.examples import write_example_image

    from .. import common

    try:
        written = write_example_image(path)
    except ShrnError as err:
        common.fail(err)
    typer.echo(str(written))
