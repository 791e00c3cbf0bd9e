"""A clean stop of training on Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .trainer import Trainer


class StopOnSignals:
    """While training, Ctrl-C (SIGINT) or SIGTERM asks for a clean stop: the current batch ends
    and a resumable state is saved. In one process a second Ctrl-C stops at once, without saving.
    Under torchrun later signals are ignored: torchrun passes the terminal's Ctrl-C on to workers
    that had it already, and its ``--shutdown-timeout`` (30 s) kills a worker that does not stop."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, trainer: "Trainer"):
        self.trainer = trainer
        self.previous: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        first = not self.trainer.stop_requested
        self.trainer.request_stop()
        if self.trainer.world.distributed:
            if first:
                self.trainer.echo(f"{signal.Signals(signum).name}: all processes stop after this batch")
            return
        self.trainer.echo("stopping after this batch (Ctrl-C again to abort without saving)")
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)
