"""`vrae-live serve` in a subprocess, and what a receiving MIDI client makes of its messages:
for the end-to-end tests and the benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now (for serve's web page)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServeProcess:
    """`vrae-live serve` in a subprocess, its output read by a thread."""

    def __init__(self, checkpoint_dir, *args: str, env=None):
        """``serve --checkpoint CHECKPOINT_DIR`` on loopback, any free OSC port, JACK MIDI, 240 bpm, no web
        page, and ``args`` (a later ``--web-port`` wins); returns once it says ``ready``."""
        command = [sys.executable, "-m", "vrae_live", "serve", "--checkpoint", str(checkpoint_dir), "--host",
                   "127.0.0.1", "--port", "0", "--midi-api", "jack", "--bpm", "240", "--web-port", "0", *args]
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**(env or os.environ), "PYTHONUNBUFFERED": "1"})
        self.lines: list[str] = []
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.strip() == "ready":
                break
        else:
            raise AssertionError("serve did not start:\n" + self.output)
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self._reader.start()
        self.osc_port = int(next(line for line in self.lines if "OSC in: send to" in line).rsplit(":", 1)[1].split(",")[0])
        self.web_urls = [line.split("web: open ", 1)[1].strip() for line in self.lines if "web: open " in line]

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def note_ons(events):
    return [e for e in events if e.data[0] & 0xF0 == 0x90 and e.data[2] > 0]


def all_notes_off(events):
    return [e for e in events if e.data[0] & 0xF0 == 0xB0 and e.data[1] == 123]


def hanging(events) -> set[tuple[int, int]]:
    sounding = set()
    for e in events:
        kind, key = e.data[0] & 0xF0, (e.data[0] & 0x0F, e.data[1])
        if kind == 0x90 and e.data[2] > 0:
            sounding.add(key)
        elif kind in (0x80, 0x90):
            sounding.discard(key)
    return sounding


def channel_messages(events):
    """Events of a MIDI channel (no clock, Start, Stop ...)."""
    return [e for e in events if e.data[0] < 0xF0]
