"""Watching the JACK server from beside rtmidi: is it still there, and have the last messages left?

rtmidi's JACK output has two blind spots, both measured here (jackd 1.9.21, dummy driver):

- A port closed right after the last send loses that burst: ``closePort`` can return while
  the last messages still sit in rtmidi's ring buffer, and the final note-offs and All Notes
  Off never reach the DAW. Waiting for 3 JACK periods to pass before closing loses nothing
  (docs/benchmarks.md, "Stops: the last notes reach the DAW").
- When the server dies, rtmidi says nothing: sends go on into the ring buffer (about 2,300
  three-byte messages) until it is full, and then ``sendMessage`` spins at 100 % of a core,
  without a timeout, deaf to signals.

A second JACK client in the same process (JACK-Client) sees both: its frame clock tells when
periods have passed, and its shutdown callback fires 5-7 ms after the server dies. It has no
process callback, on purpose: a Python process callback in a process that also runs rtmidi
deadlocked a synchronous (``-S``) server, since rtmidi keeps the GIL while it waits on JACK.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)

SETTLE_PERIODS = 3  # JACK periods to let pass between the last send and closing the port
SETTLE_CAP_S = 0.5  # however slow the server's cycles, a stop never waits longer than this
FALLBACK_SETTLE_S = 0.13  # without a watch: 3 periods of 2048 frames at 48 kHz


class JackWatch:
    """A silent JACK client: ``dead`` is set when the server goes away, and ``settle()`` waits
    for periods to pass. ``open()`` gives None where JACK-Client or libjack is missing."""

    def __init__(self, client) -> None:
        self._client = client
        self.dead = threading.Event()
        self.reason = ""
        self._on_dead: list[Callable[[str], None]] = []
        client.set_shutdown_callback(self._shutdown)  # called on a libjack thread: set flags, nothing more
        client.activate()

    @classmethod
    def open(cls, name: str) -> "JackWatch | None":
        try:
            import jack
        except (ImportError, OSError) as err:  # JACK-Client not installed, or no libjack for it to load
            log.debug("no JACK watch (%s): stops wait a fixed %.2f s", err, FALLBACK_SETTLE_S)
            return None
        try:
            return cls(jack.Client(name, no_start_server=True))
        except jack.JackError as err:
            log.debug("no JACK watch (%s): stops wait a fixed %.2f s", err, FALLBACK_SETTLE_S)
            return None

    def on_dead(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(reason)`` (from a libjack thread) when the server goes away."""
        self._on_dead.append(callback)
        if self.dead.is_set():
            callback(self.reason)

    def _shutdown(self, status, reason: str) -> None:
        self.reason = f"the JACK server went away ({reason.strip() or status})"
        self.dead.set()
        for callback in self._on_dead:
            callback(self.reason)

    def settle(self, periods: int = SETTLE_PERIODS, cap_s: float = SETTLE_CAP_S) -> None:
        """Return once ``periods`` JACK periods have passed (or the server died, or ``cap_s``)."""
        if self.dead.is_set():
            return
        client = self._client
        need, start = periods * client.blocksize, client.last_frame_time
        give_up = time.monotonic() + cap_s
        while (client.last_frame_time - start) % 2**32 < need:  # frame times wrap at 2^32
            if self.dead.is_set() or time.monotonic() >= give_up:
                return
            time.sleep(0.001)

    def close(self, timeout_s: float = 1.0) -> None:
        """Close the client, giving up after ``timeout_s``: once in well over a hundred stops here, libjack's
        ``jack_client_close`` waited on a mutex for good (two copies of libjack live in this
        process: rtmidi's wheel brings its own). A stop must not hang on a client that only
        watched; the process exits without it."""
        if self.dead.is_set():
            return

        def close() -> None:
            try:
                self._client.deactivate()
                self._client.close()
            except Exception as err:  # noqa: BLE001 -- closing a watch must never stop a stop
                log.debug("closing the JACK watch: %s", err)

        closer = threading.Thread(target=close, name="jack-watch-close", daemon=True)
        closer.start()
        closer.join(timeout_s)
        if closer.is_alive():
            log.debug("the JACK watch did not close within %.1f s; left to the process's exit", timeout_s)
