"""``python -m vrae_live``: the ``vrae-live`` command (also what torchrun and the tests start)."""

from .cli import main

main(prog_name="vrae-live")
