"""The OSC transport over real UDP on 127.0.0.1: python-osc and liblo's oscsend as clients, floods, feedback."""

from __future__ import annotations

import ipaddress
import os
import random
import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest
from pythonosc.udp_client import SimpleUDPClient

from vrae_live.errors import VraeLiveError
from vrae_live.live.controllers import load_controller
from vrae_live.live.controls import Controls
from vrae_live.live.osc.feedback import FeedbackSender
from vrae_live.live.osc.packets import split_packet
from vrae_live.live.osc.server import RECEIVE_BUFFER, OscServer, _interface_ipv4s, listen_addresses, parse_allow
from vrae_live.testing.fake_time import FakeTime

LOOPBACK = "127.0.0.1"
WAIT = 5.0  # seconds; generous, only reached when something is broken


@pytest.fixture
def controls():
    return Controls()


@pytest.fixture
def server(controls):
    with OscServer(controls, host=LOOPBACK, port=0) as server:
        yield server


@pytest.fixture
def client(server):
    client = SimpleUDPClient(LOOPBACK, server.address[1])
    yield client
    client._sock.close()


def test_binds_a_free_port(server):
    host, port = server.address
    assert host == LOOPBACK and port > 0 and server.running


def test_python_osc_client_moves_the_state(controls, client):
    client.send_message("/vrae/xy", [0.25, 0.75])
    state = controls.wait_for_version(1, WAIT)
    assert state is not None and (state.x, state.y) == (0.25, 0.75)
    client.send_message("/vrae/density", 0.9)
    client.send_message("/vrae/panic", [])
    state = controls.wait_for_version(3, WAIT)
    assert state is not None and state.panic_count == 1 and state.density == pytest.approx(0.9)


def test_a_dialect_over_udp():
    controls = Controls(load_controller("touchosc"))
    with OscServer(controls, host=LOOPBACK, port=0) as server:
        SimpleUDPClient(LOOPBACK, server.address[1]).send_message("/1/xy1", [0.9, 0.2])
        state = controls.wait_for_version(1, WAIT)
    assert state is not None and (state.x, state.y) == (pytest.approx(0.2), pytest.approx(0.9))


def test_oscsend_command_line_client(controls, server):
    oscsend = shutil.which("oscsend")
    if oscsend is None:
        if os.environ.get("CI"):
            pytest.fail("oscsend (liblo-tools) is not installed, and CI is set")
        pytest.skip("oscsend (liblo-tools) is not installed")
    port = str(server.address[1])
    subprocess.run([oscsend, LOOPBACK, port, "/vrae/xy", "ff", "0.125", "0.5"], check=True, timeout=WAIT)
    state = controls.wait_for_version(1, WAIT)
    assert state is not None and (state.x, state.y) == (0.125, 0.5)
    subprocess.run([oscsend, LOOPBACK, port, "/vrae/transpose", "i", "-7"], check=True, timeout=WAIT)
    subprocess.run([oscsend, LOOPBACK, port, "/vrae/z", "fff", "0.1", "-0.2", "0.3"], check=True, timeout=WAIT)
    state = controls.wait_for_version(3, WAIT)
    assert state is not None and state.transpose == -7 and state.z == pytest.approx((0.1, -0.2, 0.3))


def test_port_in_use_is_a_clear_error(server):
    port = server.address[1]
    with pytest.raises(VraeLiveError, match=f"port {port}.*in use"):
        OscServer(Controls(), host=LOOPBACK, port=port).start()
    assert server.running  # the first one is untouched


def test_an_address_not_on_this_machine_is_a_clear_error():
    # An address reserved for documentation (TEST-NET-3); binding to it sends nothing.
    foreign = "203.0.113.254"
    if foreign in _interface_ipv4s():
        pytest.skip(f"this machine has {foreign}")
    with pytest.raises(VraeLiveError, match=f"{foreign}:9000"):
        OscServer(Controls(), host=foreign, port=9000).start()


def test_stop_is_prompt_and_idempotent(controls):
    server = OscServer(controls, host=LOOPBACK, port=0).start()
    thread = server._thread
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.0
    assert not thread.is_alive() and not server.running
    server.stop()
    with pytest.raises(VraeLiveError):
        server.address


def _garbage(rng: random.Random) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 64))
    if kind == 1:
        return b"/vrae/xy\x00\x00\x00\x00,ff\x00" + rng.randbytes(rng.randrange(0, 9))
    if kind == 2:
        return b"#bundle\x00" + rng.randbytes(8) + b"\xff\xff\xff\xfc"  # negative element size
    return b"/vrae/xy\x00\x00\x00\x00,ff\x00\x7f\xc0\x00\x00\x3f\x00\x00\x00"  # NaN


def _flood(port: int, count: int, until: threading.Event | None = None) -> int:
    """Send ``count`` datagrams, about a quarter garbage, then keep going while ``until`` is unset; the number sent."""
    rng = random.Random(0)
    valid = [b"/vrae/density\x00\x00\x00,f\x00\x00" + bytes([0x3E, rng.randrange(256), 0, 0]) for _ in range(16)]
    sent = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        while sent < count or (until is not None and not until.is_set()):
            data = _garbage(rng) if rng.random() < 0.25 else valid[sent % 16]
            try:
                sock.sendto(data, (LOOPBACK, port))
            except OSError:  # ENOBUFS under load: UDP may drop, so may we
                pass
            sent += 1
    return sent


def test_flood_with_garbage_does_not_crash(controls, server):
    port = server.address[1]
    flooder = threading.Thread(target=_flood, args=(port, 20_000))
    flooder.start()
    flooder.join(WAIT * 4)
    assert not flooder.is_alive()
    # UDP may drop datagrams when the socket buffer fills, the marker included: resend until it arrives.
    marker = SimpleUDPClient(LOOPBACK, port)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        marker.send_message("/vrae/channel", 9)
        version = controls.snapshot().version
        if controls.wait_for_version(version + 1, 0.2) and controls.snapshot().channel == 9:
            break
    assert controls.snapshot().channel == 9
    stats = controls.stats
    assert server.running and stats["error"] == 0
    assert stats["malformed"] > 0 and stats["not_finite"] > 0 and stats["accepted"] > 0


def test_stops_promptly_in_the_middle_of_a_flood(controls):
    server = OscServer(controls, host=LOOPBACK, port=0).start()
    done = threading.Event()
    flooder = threading.Thread(target=_flood, args=(server.address[1], 2_000, done))
    flooder.start()
    assert controls.wait_for_version(1, WAIT) is not None  # the flood is arriving
    started = time.monotonic()
    server.stop()
    stopped_after = time.monotonic() - started
    done.set()
    flooder.join(WAIT)
    assert stopped_after < 1.0 and not server.running


# -- bursts: every datagram reaches the daemon


def _message(address: str, types: str, *values: float) -> bytes:
    """One OSC message, built here so the test does not depend on the client library's speed."""
    def padded(text: bytes) -> bytes:
        return text + b"\x00" * (4 - len(text) % 4)

    return padded(address.encode()) + padded(b"," + types.encode()) + struct.pack(">" + types, *values)


class PositionLog(Controls):
    """Controls that remember every position the state passed through, to see what a flood hid."""

    def __init__(self) -> None:
        super().__init__()
        self.positions = [(0.5, 0.5)]

    def handle_datagram(self, data: bytes) -> None:
        super().handle_datagram(data)
        state = self.snapshot()
        if (state.x, state.y) != self.positions[-1]:
            self.positions.append((state.x, state.y))


def test_a_burst_of_2000_datagrams_all_arrive_and_a_pad_move_inside_it_is_applied():
    controls = PositionLog()
    with OscServer(controls, host=LOOPBACK, port=0) as server:
        if server.receive_buffer_capped:
            pytest.skip(f"the system capped the receive buffer at {server.receive_buffer} bytes (net.core.rmem_max)")
        assert server.receive_buffer >= RECEIVE_BUFFER
        density = [_message("/vrae/density", "f", k / 1000) for k in range(1000)]
        burst = [density[k % 1000] for k in range(2000)]
        burst[1000] = _message("/vrae/xy", "ff", 0.125, 0.875)  # the distinctive position, mid-flood
        burst[-1] = _message("/vrae/xy", "ff", 0.25, 0.75)  # the last position sent
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for data in burst:  # back to back, as fast as Python sends
                sender.sendto(data, server.address)
        state = controls.wait_for_version(2000, WAIT)
        stats = controls.stats
        assert state is not None, f"{stats['datagrams']} of 2000 datagrams arrived; {dict(stats)}"
    assert stats["datagrams"] == 2000 and stats["accepted"] == 2000
    assert (state.x, state.y) == (0.25, 0.75)
    assert controls.positions == [(0.5, 0.5), (0.125, 0.875), (0.25, 0.75)]


def test_the_startup_lines_say_who_is_obeyed_and_whether_the_buffer_was_capped(controls):
    with OscServer(controls, host=LOOPBACK, port=0) as server:
        lines = server.describe()
        assert lines[0] == "OSC in: obeys any sender; limit with --allow 192.168.1.0/24"
        server.receive_buffer = 425_984  # as a default Linux would grant it
        assert server.receive_buffer_capped
        assert "sudo sysctl -w net.core.rmem_max=4194304" in server.describe()[1]
    allowed = OscServer(controls, host=LOOPBACK, port=0, allow=(parse_allow("192.168.1.0/24"), parse_allow("::1")))
    assert allowed.describe()[0] == "OSC in: obeys only 192.168.1.0/24, ::1/128"


# -- who may play


def test_parse_allow_takes_networks_and_single_addresses():
    assert str(parse_allow("192.168.1.0/24")) == "192.168.1.0/24"
    assert str(parse_allow("192.168.1.20/24")) == "192.168.1.0/24"
    assert str(parse_allow("10.0.0.7")) == "10.0.0.7/32"
    assert str(parse_allow("fd00::/8")) == "fd00::/8"
    with pytest.raises(ValueError, match="e.g. 192.168.1.0/24"):
        parse_allow("phone.local")


def _send_from(source: str, port: int, data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.sendto(data, (LOOPBACK, port))


def test_allow_refuses_other_senders_without_parsing_and_obeys_its_own():
    controls = Controls()
    with OscServer(controls, host="0.0.0.0", port=0, allow=(parse_allow("127.0.0.2/32"),)) as server:
        port = server.address[1]
        _send_from("127.0.0.1", port, _message("/vrae/panic", ""))
        _send_from("127.0.0.1", port, b"garbage that would count as malformed if parsed")
        _send_from("127.0.0.2", port, _message("/vrae/xy", "ff", 0.125, 0.875))  # after the refused ones
        state = controls.wait_for_version(1, WAIT)
    stats = controls.stats
    assert state is not None and (state.x, state.y) == (0.125, 0.875) and state.panic_count == 0
    assert stats["refused"] == 2 and stats["datagrams"] == 3 and stats["accepted"] == 1
    assert stats["malformed"] == 0, "a refused datagram is never parsed"


def test_allow_matches_ipv4_senders_seen_through_an_ipv6_socket():
    from vrae_live.live.osc.server import SenderFilter

    lan = SenderFilter((parse_allow("192.168.1.0/24"), parse_allow("fd00::/8")))
    assert lan.obeys("192.168.1.20") and lan.obeys("::ffff:192.168.1.20") and lan.obeys("fd00::5")
    assert not lan.obeys("192.168.2.20") and not lan.obeys("::1") and not lan.obeys("not an address")
    assert SenderFilter().obeys("203.0.113.9")


# -- where to send to


def test_listen_addresses_for_all_interfaces():
    addresses = listen_addresses("0.0.0.0", 9000)
    for address in addresses:
        ip, port = address.rsplit(":", 1)
        assert port == "9000"
        parsed = ipaddress.IPv4Address(ip)
        assert not parsed.is_loopback and not parsed.is_unspecified
    assert len(addresses) == len(set(addresses))


def test_listen_addresses_for_one_host():
    assert listen_addresses(LOOPBACK, 9001) == ["127.0.0.1:9001"]


# -- feedback to the controller


@pytest.fixture
def receiver():
    """A plain UDP socket on 127.0.0.1 standing in for the phone."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        sock.settimeout(WAIT)
        yield sock


def _receive(sock: socket.socket, count: int) -> list[tuple[str, list]]:
    messages = []
    while len(messages) < count:
        messages += [(m.address, m.params) for m in split_packet(sock.recv(65535))]
    return messages


def test_feedback_uses_the_dialect_and_is_rate_limited(receiver):
    clock = FakeTime(100.0)
    controls = Controls(load_controller("touchosc"))
    controls.handle_message("/vrae/xy", [0.25, 0.75])
    port = receiver.getsockname()[1]
    with FeedbackSender(LOOPBACK, port, load_controller("touchosc"), min_interval=0.05, clock=clock) as feedback:
        assert feedback.send(controls.snapshot(), status="playing") is True
        got = dict(_receive(receiver, 2))
        assert got["/1/xy1"] == [pytest.approx(0.75), pytest.approx(0.25)]  # TouchOSC wants (y, x)
        assert got["/1/label1"] == ["playing"]

        controls.handle_message("/vrae/xy", [0.5, 0.5])
        clock.work(0.01)
        assert feedback.send(controls.snapshot(), status="playing") is False  # too soon
        clock.work(0.05)
        assert feedback.send(controls.snapshot(), status="playing") is True  # position only: status unchanged
        assert _receive(receiver, 1) == [("/1/xy1", [0.5, 0.5])]
        clock.work(1.0)
        assert feedback.send(controls.snapshot(), status="playing") is False  # nothing changed


def test_feedback_to_lemur_sends_each_axis(receiver):
    with FeedbackSender(LOOPBACK, receiver.getsockname()[1], load_controller("lemur"), clock=FakeTime(100.0)) as feedback:
        controls = Controls()
        controls.handle_message("/vrae/xy", [0.5, 0.25])
        assert feedback.send(controls.snapshot())
        assert sorted(_receive(receiver, 2)) == [("/Pad.x", [0.5]), ("/Pad.y", [0.25])]


def test_feedback_without_a_preset_is_canonical(receiver):
    with FeedbackSender(LOOPBACK, receiver.getsockname()[1]) as feedback:
        assert feedback.send(Controls().snapshot(), status="ready")
        assert sorted(_receive(receiver, 2)) == [("/vrae/status", ["ready"]), ("/vrae/xy", [0.5, 0.5])]
