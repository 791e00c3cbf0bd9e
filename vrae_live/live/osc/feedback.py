"""OSC out: the current position and a status line, shown on the controller."""

from __future__ import annotations

import logging
import time
from typing import Callable

from pythonosc.udp_client import SimpleUDPClient

from ...errors import VraeLiveError
from ...play.state import ControlState
from ..controllers import CANONICAL, ControllerMap

log = logging.getLogger(__name__)

DEFAULT_STATUS_ADDRESS = "/vrae/status"


class FeedbackSender:
    """Sends the current position (in the controller's own dialect) and a status text back to it.

    ``send()`` sends at most once per ``min_interval`` seconds and only what
    changed since the last send, so a phone on Wi-Fi is not flooded.
    """

    def __init__(
        self,
        host: str,
        port: int,
        controller_map: ControllerMap | None = None,
        *,
        min_interval: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.controller_map = controller_map or CANONICAL
        self.status_address = self.controller_map.status_address or DEFAULT_STATUS_ADDRESS
        self.min_interval = min_interval
        self.clock = clock
        self.errors = 0  # sends that failed, e.g. the phone left the network
        try:
            self._client = SimpleUDPClient(host, port)
        except OSError as err:
            raise VraeLiveError(f"cannot send OSC feedback to {host}:{port}: {err}") from err
        self._last_sent_at: float | None = None
        self._last_position: tuple[float, float] | None = None
        self._last_status: str | None = None

    def send(self, state: ControlState, status: str | None = None) -> bool:
        """Send what changed, unless the last send was under ``min_interval`` ago; whether anything was sent."""
        now = self.clock()
        if self._last_sent_at is not None and now - self._last_sent_at < self.min_interval:
            return False
        messages = []
        position = (state.x, state.y)
        if position != self._last_position:
            messages += self.controller_map.position_feedback(*position)
        if status is not None and status != self._last_status:
            messages.append((self.status_address, [status]))
        if not messages:
            return False
        try:
            for address, values in messages:
                self._client.send_message(address, values)
        except OSError as err:  # feedback is a courtesy: never let it stop the music
            self.errors += 1
            log.debug("OSC feedback failed: %s", err)
            return False
        self._last_sent_at = now
        self._last_position = position
        if status is not None:
            self._last_status = status
        return True

    def close(self) -> None:
        close = getattr(self._client, "close", None)  # UDPClient.close() is missing from older python-osc
        if close is not None:
            close()
        else:
            self._client._sock.close()

    def __enter__(self) -> "FeedbackSender":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
