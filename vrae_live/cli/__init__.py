"""The ``vrae-live`` command: the group, its error handling and logging; one module per group of commands.

Thin: heavy imports (torch, rtmidi, matplotlib) happen inside the commands, so
``vrae-live --help`` answers at once.
"""

from __future__ import annotations

import logging
from typing import Any

import click

from ..errors import VraeLiveError

log = logging.getLogger("vrae_live")


class _EchoHandler(logging.Handler):
    """Log lines through click, to whatever stderr is now: plain for info, prefixed otherwise."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno != logging.INFO:
            message = f"{record.levelname.lower()}: {message}"
        click.echo(message, err=True)


def _setup_logging(verbose: bool) -> None:
    if not any(isinstance(h, _EchoHandler) for h in log.handlers):
        log.addHandler(_EchoHandler())
    log.setLevel(logging.DEBUG if verbose else logging.INFO)


class _Group(click.Group):
    """Turns the project's errors into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VraeLiveError as err:
            click.echo(f"error: {err}", err=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vrae-live")
@click.option("-v", "--verbose", is_flag=True, help="Show debug messages.")
def main(verbose: bool) -> None:
    """Train a VRAE on your MIDI songs, then play its latent space live."""
    _setup_logging(verbose)


from .live import ports, serve  # noqa: E402  (the commands register on the group defined above)
from .paper import curve, generate, interpolate, map_command  # noqa: E402
from .training import evaluate_command, info, train  # noqa: E402

for command in (train, info, evaluate_command, serve, ports, generate, interpolate, map_command, curve):
    main.add_command(command)

