"""OSC over UDP in: the only module that opens a listening socket.

``OscServer`` receives datagrams on a daemon thread and hands the raw bytes to
``Controls.handle_datagram`` (which validates and stores, nothing more).
``listen_addresses`` says where a phone on the same network should send to.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import struct
import sys
import threading

from ...errors import VraeLiveError
from ..controls import Controls

log = logging.getLogger(__name__)

MAX_DATAGRAM = 65535  # bytes; the largest UDP payload


class OscServer:
    """Receives OSC datagrams on ``host``:``port`` (UDP) and passes them to ``controls``.

    ``port=0`` binds a free port; ``address`` gives the one bound. ``stop()``
    returns within about ``poll_interval`` seconds, however busy the socket.
    Use as a context manager, or call ``start()`` and ``stop()``.
    """

    def __init__(self, controls: Controls, host: str = "0.0.0.0", port: int = 9000, *, poll_interval: float = 0.1) -> None:
        self.controls = controls
        self.host = host
        self.port = port
        self.poll_interval = poll_interval  # seconds the receive loop waits before checking for stop()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) actually bound; only while running."""
        if self._sock is None:
            raise VraeLiveError("the OSC server is not running; call start() first")
        host, port = self._sock.getsockname()[:2]
        return host, port

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "OscServer":
        if self._sock is not None:
            return self
        self._sock = _bind_udp(self.host, self.port)
        # A timeout, not a blocking recv: closing a socket does not wake a thread
        # blocked on it on every platform, so the loop checks for stop() itself.
        self._sock.settimeout(self.poll_interval)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._receive_loop, name=f"vrae-osc:{self.address[1]}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        """Stop receiving, join the thread (at most ``timeout`` seconds) and close the socket."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the OSC receive thread did not stop within %.1f s", timeout)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "OscServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _receive_loop(self) -> None:
        sock = self._sock
        while not self._stopping.is_set():
            try:
                data, _sender = sock.recvfrom(MAX_DATAGRAM)
            except socket.timeout:
                continue
            except OSError as err:
                if self._stopping.is_set() or err.errno == errno.EBADF:
                    break
                # e.g. ECONNREFUSED from an ICMP error some systems report on UDP; the socket still works
                log.debug("OSC receive error: %s", err)
                continue
            self.controls.handle_datagram(data)


def _bind_udp(host: str, port: int) -> socket.socket:
    """A UDP socket bound to (host, port); a VraeLiveError that names the port when that fails."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise VraeLiveError(f"cannot listen for OSC on {host}:{port}: unknown host ({err.strerror})") from err
    # IPv4 first: controllers send to an IPv4 address, and "localhost" may resolve to ::1 first.
    family, socktype, proto, _, sockaddr = sorted(infos, key=lambda info: info[0] != socket.AF_INET)[0]
    sock = socket.socket(family, socktype, proto)
    # No SO_REUSEADDR: on UDP it would let two servers share the port silently.
    try:
        sock.bind(sockaddr)
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise VraeLiveError(
                f"OSC port {port} on {host} is already in use (another vrae-live or OSC app?); choose another with --port"
            ) from err
        raise VraeLiveError(f"cannot listen for OSC on {host}:{port}: {err.strerror or err}") from err
    return sock


# ---------------------------------------------------------------------------
# Where to send to


# Private addresses to "connect" a UDP socket to. Connecting a UDP socket sends
# nothing; it only asks the routing table which local address would be used.
_ROUTE_PROBES = ("10.255.255.254", "172.31.255.254", "192.168.255.254")


def listen_addresses(host: str, port: int) -> list[str]:
    """``"IP:PORT"`` strings a controller on the same network should send to.

    For a wildcard ``host`` ("0.0.0.0" or ""), the machine's non-loopback IPv4
    addresses, found offline and without sending a packet; empty when the
    machine has no network (then only a controller on this machine can reach
    it, at 127.0.0.1). For any other ``host``, that host alone.
    """
    if host not in ("", "0.0.0.0"):
        return [f"{host}:{port}"]
    found: list[str] = []
    for ip in _interface_ipv4s() + _routed_ipv4s():
        address = ipaddress.ip_address(ip)
        if not (address.is_loopback or address.is_unspecified) and ip not in found:
            found.append(ip)
    return [f"{ip}:{port}" for ip in found]


def _routed_ipv4s() -> list[str]:
    found = []
    for probe in _ROUTE_PROBES:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect((probe, 9))
                found.append(sock.getsockname()[0])
            except OSError:  # no route: offline, or no interface for that range
                continue
    return found


def _interface_ipv4s() -> list[str]:
    """Every interface's IPv4 address (Linux; elsewhere empty, and the route probe has to do)."""
    if not sys.platform.startswith("linux"):
        return []
    import fcntl

    siocgifaddr = 0x8915  # from <linux/sockios.h>
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                reply = fcntl.ioctl(sock.fileno(), siocgifaddr, request)
            except OSError:  # the interface has no IPv4 address
                continue
            found.append(socket.inet_ntoa(reply[20:24]))
    return found
