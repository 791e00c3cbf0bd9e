"""A real JACK server and MIDI receivers in separate JACK clients: the harness of the end-to-end
tests and of ``scripts/bench_live.py``.

    with JackServer(period_frames=64) as jack, MidiDump("vrae-live:vrae-live") as dump:
        ...  # start `vrae-live serve --midi-api jack` with env=jack.env
        events = dump.wait_for(2)

:class:`JackServer` runs ``jackd`` (dummy driver: no sound hardware needed) under a server
name of its own, so it never meets a JACK server the user runs, and points
``JACK_DEFAULT_SERVER`` at it, in this process while it runs (rtmidi clients opened here
find it) and in ``env`` for subprocesses. Synchronisation is by polling with timeouts,
never by fixed sleeps.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

SAMPLE_RATE = 48_000
PERIOD_FRAMES = 64  # 1.3 ms: JACK hands MIDI on at period boundaries, the floor of any timing measured
JACK_TOOLS = ("jackd", "jack_lsp", "jack_connect", "jack_midi_dump")
_SERVER_VARIABLES = ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")


def missing_jack_tools() -> list[str]:
    return [tool for tool in JACK_TOOLS if shutil.which(tool) is None]


def poll(condition: Callable[[], object], timeout: float, interval: float = 0.005, what: str = "condition"):
    """``condition()``'s first truthy value, checked every ``interval`` seconds; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def jack_ports() -> list[str]:
    """All port names on the server of ``JACK_DEFAULT_SERVER``; [] when it does not answer."""
    result = subprocess.run(["jack_lsp"], capture_output=True, text=True, timeout=10)
    if result.returncode != 0:
        return []
    return result.stdout.splitlines()


def jack_connect(source: str, destination: str, timeout: float = 5.0) -> None:
    """Connect two ports, retrying: a non-realtime server on a busy machine can refuse a request now and then."""
    errors: list[str] = []

    def attempt() -> bool:
        result = subprocess.run(["jack_connect", source, destination], capture_output=True, text=True, timeout=10)
        errors.append(result.stderr.strip())
        return result.returncode == 0

    try:
        poll(attempt, timeout, interval=0.05, what=f"jack_connect {source} {destination}")
    except TimeoutError:
        raise RuntimeError(f"jack_connect {source} {destination} failed: {errors[-1]}; ports: {jack_ports()}") from None


def die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies, so no jackd outlives a test run."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_process(process: subprocess.Popen, first_signal: int = signal.SIGTERM, timeout: float = 5.0) -> None:
    """``first_signal``, then SIGKILL after ``timeout`` seconds; returns once the process has gone."""
    if process.poll() is None:
        process.send_signal(first_signal)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def reclaim_stale_servers() -> list[str]:
    """Free the slots of JACK servers that died without unregistering (SIGKILLed); their names.

    JACK keeps at most 8 servers in its registry (``/dev/shm/jack-shm-registry``). A server
    killed with SIGKILL leaves its entry behind, and only a server of the same name takes it
    back: after a few such deaths every new server fails with "Too many servers already
    active". The names are read from the semaphores each server leaves in /dev/shm; each
    one without a live ``jackd -n NAME`` is started for a moment and stopped, which frees it.
    """
    shm = Path("/dev/shm")
    if not shm.is_dir():
        return []
    names = {m.group(1) for p in shm.glob("jack_sem.*") if (m := re.match(r"jack_sem\.\d+_(.+?)_(?:system|freewheel)$", p.name))}
    running = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    reclaimed = []
    for name in sorted(names):
        if re.search(rf"jackd .*-n {re.escape(name)}( |$)", running, re.M):
            continue
        probe = subprocess.Popen(["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-p", "1024"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent)
        env = {**os.environ, "JACK_DEFAULT_SERVER": name, "JACK_NO_START_SERVER": "1"}
        try:
            poll(lambda: probe.poll() is not None or subprocess.run(["jack_lsp"], env=env, capture_output=True,
                                                                     timeout=10).returncode == 0,
                 timeout=5, what=f"jackd -n {name}")
        except TimeoutError:
            pass
        if probe.poll() is None:
            reclaimed.append(name)
        stop_process(probe, signal.SIGTERM)
    return reclaimed


class JackServer:
    """A private ``jackd`` on the dummy driver, from ``start()`` (or ``with``) to ``stop()``.

    ``synchronous`` (``-S``): each cycle waits for every client. In the default asynchronous
    mode a client that misses a cycle (an xrun, frequent without realtime priority on a busy
    machine) loses that cycle's MIDI, and tests that count messages would flake
    (docs/benchmarks.md, "Stops: the last notes reach the DAW").
    ``realtime`` (``-R``): without it the dummy driver paces its cycles with ordinary sleeps,
    its clock falls behind real time by a percent or more, and its frame stamps carry that
    wobble; ``--no-realtime`` is what containers and desktops outside the audio group get.
    """

    def __init__(self, period_frames: int = PERIOD_FRAMES, sample_rate: int = SAMPLE_RATE, *,
                 realtime: bool = False, synchronous: bool = True, name: str | None = None) -> None:
        self.name = name or f"vrae-jack-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.period_frames, self.sample_rate = period_frames, sample_rate
        self.realtime, self.synchronous = realtime, synchronous
        self.process: subprocess.Popen | None = None
        self._log = None
        self._saved: dict[str, str | None] = {}

    @property
    def period_s(self) -> float:
        return self.period_frames / self.sample_rate

    @property
    def env(self) -> dict[str, str]:
        """The environment for a subprocess that should use this server (and never start one)."""
        return {**os.environ, "JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1"}

    @property
    def command(self) -> list[str]:
        # -t: a client may take 5 s to answer before the server drops it.
        return (["jackd", "-n", self.name] + (["-S"] if self.synchronous else [])
                + ["-R" if self.realtime else "--no-realtime", "-t", "5000",
                   "-d", "dummy", "-r", str(self.sample_rate), "-p", str(self.period_frames)])

    def start(self, retried: bool = False) -> "JackServer":
        missing = missing_jack_tools()
        if missing:
            raise RuntimeError(f"JACK tools not found: {', '.join(missing)} (Debian: apt install jackd2)")
        self._saved = {key: os.environ.get(key) for key in _SERVER_VARIABLES}
        os.environ.update({"JACK_DEFAULT_SERVER": self.name, "JACK_NO_START_SERVER": "1"})
        # A file, not a pipe: nobody reads jackd's chatter while it runs, and a full pipe would block it.
        self._log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT, text=True,
                                        preexec_fn=die_with_parent)
        try:
            poll(lambda: self.process.poll() is not None or jack_ports(), timeout=10, what=f"jackd -n {self.name}")
        except TimeoutError:
            pass
        if self.process.poll() is not None or not jack_ports():
            log = self.output()
            self.stop()
            if "Too many servers already active" in log and not retried and reclaim_stale_servers():
                return self.start(retried=True)
            raise RuntimeError(f"jackd did not start: {' '.join(self.command)}\n{log}")
        return self

    def output(self) -> str:
        """What jackd printed so far."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: the server dies as on a crash, without telling its clients."""
        if self.alive():
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGTERM)
        if self._log is not None:
            self._log.close()
            self._log = None
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved = {}

    def __enter__(self) -> "JackServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass(frozen=True)
class DumpEvent:
    frame: int  # sample frames since the receiver's first JACK cycle
    data: bytes  # the raw MIDI message
    sample_rate: int = SAMPLE_RATE

    @property
    def time(self) -> float:
        """Seconds since the receiver's first JACK cycle."""
        return self.frame / self.sample_rate


# jack_midi_dump -a prints "<frame>: <hex bytes> [description]", e.g.
# " 161408: 90 3c 64 note on  (channel  0): pitch  60, velocity 100"
_DUMP_LINE = re.compile(r"^\s*(\d+):((?:\s[0-9a-f]{2})+)")


def parse_dump_line(line: str, sample_rate: int = SAMPLE_RATE) -> DumpEvent | None:
    match = _DUMP_LINE.match(line)
    if match is None:
        return None
    return DumpEvent(int(match.group(1)), bytes.fromhex(match.group(2)), sample_rate)


class MidiDump:
    """``jack_midi_dump`` in its own process, receiving from ``source`` (a JACK output port, or None).

    Events arrive in ``events`` as :class:`DumpEvent` objects, read by a thread;
    ``wait_for`` blocks until enough have arrived. The input port is
    ``<client_name>:input``.
    """

    def __init__(self, source: str | None = None, client_name: str | None = None, sample_rate: int = SAMPLE_RATE):
        self.source = source
        self.client_name = client_name or f"dump-{uuid.uuid4().hex[:6]}"
        self.sample_rate = sample_rate
        self.events: list[DumpEvent] = []
        self.unparsed: list[str] = []
        self._arrived = threading.Condition()
        self._process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    @property
    def input_port(self) -> str:
        return f"{self.client_name}:input"

    def start(self) -> "MidiDump":
        # -a: absolute timestamps in frames since the client's first cycle.
        self._process = subprocess.Popen(
            ["jack_midi_dump", "-a", self.client_name],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # one pipe, always drained by the reader; what is not an event lands in unparsed
            text=True,
            bufsize=1,
            preexec_fn=die_with_parent,
        )
        self._reader = threading.Thread(target=self._read, name=f"{self.client_name}-reader", daemon=True)
        self._reader.start()
        poll(
            lambda: self._process.poll() is not None or self.input_port in jack_ports(),
            timeout=10,
            what=f"JACK port {self.input_port}",
        )
        if self._process.poll() is not None:
            self._reader.join(timeout=5)
            raise RuntimeError(f"jack_midi_dump exited: {''.join(self.unparsed)}")
        if self.source is not None:
            self.connect(self.source)
        return self

    def connect(self, source: str) -> None:
        jack_connect(source, self.input_port)

    def _read(self) -> None:
        for line in self._process.stdout:
            event = parse_dump_line(line, self.sample_rate)
            with self._arrived:
                if event is None:
                    self.unparsed.append(line)
                else:
                    self.events.append(event)
                self._arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[DumpEvent]:
        """The first ``count`` events, waiting up to ``timeout`` seconds for them to arrive."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.events) >= count, timeout):
                raise TimeoutError(f"{len(self.events)} of {count} MIDI events arrived in {timeout} s: {self.events}")
            return list(self.events[:count])

    def wait_until(self, predicate: Callable[[list[DumpEvent]], bool], timeout: float = 5.0) -> list[DumpEvent]:
        """All events so far, once ``predicate(events)`` holds."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: predicate(self.events), timeout):
                raise TimeoutError(f"condition not met in {timeout} s; events: {self.events}")
            return list(self.events)

    def stop(self) -> None:
        if self._process is not None:
            # SIGINT lets jack_midi_dump close its JACK client cleanly.
            stop_process(self._process, signal.SIGINT)
        if self._reader is not None:
            self._reader.join(timeout=5)

    def __enter__(self) -> "MidiDump":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
