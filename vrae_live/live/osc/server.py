"""OSC over UDP in: the only module that opens a listening socket.

``OscServer`` receives datagrams on a daemon thread and hands the raw bytes to
``Controls.handle_datagram`` (which validates and stores, nothing more); datagrams
from a sender outside ``allow`` are counted as refused and never parsed.
``listen_addresses`` says where a phone on the same network should send to.
"""

from __future__ import annotations

import errno
import functools
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

# The kernel drops what arrives while the receive buffer is full. Linux's default
# (208 KiB) holds only a few hundred small datagrams, and a burst from a controller
# (or a loaded machine where this thread waits its turn) lost a third of them.
# 4 MiB holds several thousand.
RECEIVE_BUFFER = 4 * 1024 * 1024  # bytes asked for

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allow(text: str) -> IpNetwork:
    """``--allow``'s value: a network (``192.168.1.0/24``, ``fd00::/8``) or one address; ValueError if neither."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)  # strict=False: 192.168.1.20/24 means its network
    except ValueError as err:
        raise ValueError(f"{text!r} is not an IP address or network (e.g. 192.168.1.0/24 or 192.168.1.20)") from err


class SenderFilter:
    """Which senders' datagrams are obeyed: any when ``networks`` is empty, else those inside one of them."""

    def __init__(self, networks: tuple[IpNetwork, ...] = ()) -> None:
        self.networks = tuple(networks)
        # One controller sends from one address: the answer is cached, not worked out per datagram.
        self.obeys = functools.lru_cache(maxsize=256)(self._obeys)

    def _obeys(self, host: str) -> bool:
        if not self.networks:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:  # not an IP address (cannot happen on an IP socket); refuse what cannot be checked
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # an IPv4 sender as seen by a dual-stack IPv6 socket
        return any(address in network for network in self.networks)

    def describe(self) -> str:
        if not self.networks:
            return "obeys any sender; limit with --allow 192.168.1.0/24"
        return "obeys only " + ", ".join(str(network) for network in self.networks)


class OscServer:
    """Receives OSC datagrams on ``host``:``port`` (UDP) and passes them to ``controls``.

    ``port=0`` binds a free port; ``address`` gives the one bound. ``stop()``
    returns within about ``poll_interval`` seconds, however busy the socket.
    Use as a context manager, or call ``start()`` and ``stop()``.

    ``allow``: the networks whose senders are obeyed (empty: any sender);
    a datagram from elsewhere is counted as ``refused`` and never parsed.
    ``receive_buffer`` is the socket's receive buffer as the system granted it
    (bytes, as the system reports it: Linux reports twice what it lets data use).
    """

    def __init__(self, controls: Controls, host: str = "0.0.0.0", port: int = 9000, *, poll_interval: float = 0.1,
                 allow: tuple[IpNetwork, ...] = ()) -> None:
        self.controls = controls
        self.host = host
        self.port = port
        self.poll_interval = poll_interval  # seconds the receive loop waits before checking for stop()
        self.senders = SenderFilter(allow)
        self.receive_buffer = 0  # bytes, once started
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
    def receive_buffer_capped(self) -> bool:
        """True when the system gave a smaller receive buffer than asked for (a burst may be dropped)."""
        return 0 < self.receive_buffer < RECEIVE_BUFFER

    def describe(self) -> list[str]:
        """Lines for the startup output: who is obeyed, and the receive buffer (with the fix when capped)."""
        lines = [f"OSC in: {self.senders.describe()}"]
        if self.receive_buffer_capped:
            lines.append(f"OSC in: the system capped the receive buffer at {self.receive_buffer // 1024} KiB "
                         f"(asked for {RECEIVE_BUFFER // 1024} KiB), so a burst may be dropped; raise the cap with "
                         f"sudo sysctl -w net.core.rmem_max={RECEIVE_BUFFER}")
        return lines

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "OscServer":
        if self._sock is not None:
            return self
        self._sock = _bind_udp(self.host, self.port)
        self.receive_buffer = _raise_receive_buffer(self._sock, RECEIVE_BUFFER)
        log.debug("OSC in: receive buffer %d KiB (asked for %d KiB)", self.receive_buffer // 1024, RECEIVE_BUFFER // 1024)
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
                data, sender = sock.recvfrom(MAX_DATAGRAM)
            except socket.timeout:
                continue
            except OSError as err:
                if self._stopping.is_set() or err.errno == errno.EBADF:
                    break
                # e.g. ECONNREFUSED from an ICMP error some systems report on UDP; the socket still works
                log.debug("OSC receive error: %s", err)
                continue
            if self.senders.obeys(sender[0]):
                self.controls.handle_datagram(data)
            else:
                self.controls.refuse_datagram(sender[0])


def _raise_receive_buffer(sock: socket.socket, wanted: int) -> int:
    """Ask for a ``wanted``-byte receive buffer; the size the system then reports.

    Linux caps SO_RCVBUF at net.core.rmem_max; SO_RCVBUFFORCE passes the cap
    but only for root (CAP_NET_ADMIN), so it is tried only when the cap bit.
    """
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, wanted)
    except OSError as err:  # some systems refuse a size over their limit outright
        log.debug("SO_RCVBUF %d refused: %s", wanted, err)
    got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    force = getattr(socket, "SO_RCVBUFFORCE", None)  # Linux only
    if got < wanted and force is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, wanted)
            got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        except OSError:  # EPERM: not root; the capped size stands
            pass
    return got


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
