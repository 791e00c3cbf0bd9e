"""Property tests of the OSC parser and the control state, on arbitrary and near-valid datagrams.

``split_packet`` either returns python-osc messages or raises ``MalformedPacket``,
nothing else; ``Controls.handle_datagram`` never raises, counts every datagram, and keeps
every control within ``CONTROL_RANGES`` (and a latent vector within +-Z_LIMIT), whatever
arrives: random bytes, valid messages and bundles with bytes overwritten, bundles nested
past the limit, packets cut short at any point.
"""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from vrae_live.live.controllers import CONTROL_RANGES, INTEGER_CONTROLS, load_controller
from vrae_live.live.controls import Z_LIMIT, Controls, ControlState
from vrae_live.live.osc.packets import MAX_BUNDLE_DEPTH, MalformedPacket, split_packet

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DIALECTS = {name: load_controller(name) for name in ("touchosc", "lemur", "open-stage-control")}
LATENT = 2

# -- building near-valid packets -------------------------------------------------------

ADDRESSES = sorted(
    {"/vrae/xy", "/vrae/z", "/vrae/density", "/vrae/temperature", "/vrae/velocity", "/vrae/transpose",
     "/vrae/channel", "/vrae/hold", "/vrae/panic", "/vrae/unknown", "/"}
    | {address for dialect in DIALECTS.values() for address in dialect.routes()}
)

finite_or_not = st.floats(allow_nan=True, allow_infinity=True)
ARGUMENTS = st.one_of(
    st.tuples(st.just("f"), st.floats(width=32, allow_nan=True, allow_infinity=True)),
    st.tuples(st.just("d"), finite_or_not),
    st.tuples(st.just("i"), st.integers(-(2**31), 2**31 - 1)),
    st.tuples(st.just("h"), st.integers(-(2**63), 2**63 - 1)),
    st.tuples(st.just("s"), st.sampled_from(["", "a", "pad", "\u00e9t\u00e9", "/vrae/xy", "x" * 13])),
    st.tuples(st.just("b"), st.binary(min_size=1, max_size=12)),  # python-osc builds no empty blob
    st.tuples(st.sampled_from("TFN"), st.none()),
)


@st.composite
def messages(draw) -> bytes:
    """A valid OSC message: a known (or random) address and a few typed arguments."""
    address = draw(st.sampled_from(ADDRESSES))
    builder = OscMessageBuilder(address=address)
    for tag, value in draw(st.lists(ARGUMENTS, max_size=3)):
        builder.add_arg({"T": True, "F": False}.get(tag, value), tag)
    return builder.build().dgram


def bundle_bytes(elements: list[bytes]) -> bytes:
    """A bundle framed by hand (time tag 1: immediately)."""
    return b"#bundle\x00" + struct.pack(">Q", 1) + b"".join(struct.pack(">i", len(e)) + e for e in elements)


# Bundles of bundles, up to MAX_BUNDLE_DEPTH + 2 deep: some past the limit.
packets = st.recursive(messages(), lambda inner: st.lists(inner, max_size=3).map(bundle_bytes), max_leaves=6)


@st.composite
def mutated(draw) -> bytes:
    """A valid packet with a few bytes overwritten (argument bytes, sizes, tags alike) and maybe cut short."""
    data = bytearray(draw(packets))
    for _ in range(draw(st.integers(0, 4))):
        position = draw(st.integers(0, len(data) - 1))
        data[position] = draw(st.one_of(st.integers(0, 255), st.sampled_from([0x00, 0x7F, 0x80, 0xFF, ord(",")])))
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(data)))
        if draw(st.booleans()):
            cut -= cut % 4  # still a multiple of 4, so parsing goes past the first size check
        data = data[:cut]
    return bytes(data)


# -- what must hold --------------------------------------------------------------------


def split_or_malformed(data: bytes) -> list[OscMessage] | None:
    """``split_packet``'s messages, or None when it raised MalformedPacket; any other exception fails the test."""
    try:
        found = split_packet(data)
    except MalformedPacket as err:
        assert err.reason in ("malformed", "unsupported_type")
        return None
    assert isinstance(found, list) and all(isinstance(m, OscMessage) for m in found)
    for m in found:
        assert m.address.startswith("/") and isinstance(m.params, list)
    return found


def assert_in_range(state: ControlState) -> None:
    for name, (lo, hi) in CONTROL_RANGES.items():
        value = getattr(state, name)
        assert lo <= value <= hi, (name, value)
        assert math.isfinite(value)
        if name in INTEGER_CONTROLS:
            assert type(value) is int, (name, value)
    if state.z is not None:
        assert len(state.z) == LATENT
        assert all(math.isfinite(v) and -Z_LIMIT <= v <= Z_LIMIT for v in state.z), state.z
    assert isinstance(state.hold, bool) and isinstance(state.touched, bool)
    assert state.panic_count >= 0 and state.version >= state.panic_count


def feed(controls: Controls, data: bytes) -> None:
    """One datagram in: it never raises, it is counted, and it leaves at least one trace in the stats."""
    before = controls.stats
    controls.handle_datagram(data)
    after = controls.stats
    assert after["datagrams"] == before["datagrams"] + 1
    assert sum(after.values()) - after["datagrams"] > sum(before.values()) - before["datagrams"], "left no trace"
    assert after["error"] == 0, "a failure mode nobody has named yet"
    assert controls.snapshot().version == after["accepted"]
    assert_in_range(controls.snapshot())


# -- split_packet ----------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=2048))
def test_split_packet_on_arbitrary_bytes_returns_messages_or_raises_malformed(data):
    split_or_malformed(data)


@FUZZ
@given(mutated())
def test_split_packet_on_mutated_and_truncated_packets_returns_messages_or_raises_malformed(data):
    split_or_malformed(data)


def depth(data: bytes) -> int:
    """How deep bundles nest in a well-formed packet (a message: 0)."""
    if not data.startswith(b"#bundle\x00"):
        return 0
    deepest, index = 1, 16
    while index < len(data):
        (size,) = struct.unpack_from(">i", data, index)
        deepest = max(deepest, 1 + depth(data[index + 4 : index + 4 + size]))
        index += 4 + size
    return deepest


def leaves(data: bytes) -> list[bytes]:
    """The messages of a well-formed packet, in order, as bytes."""
    if not data.startswith(b"#bundle\x00"):
        return [data]
    found, index = [], 16
    while index < len(data):
        (size,) = struct.unpack_from(">i", data, index)
        found += leaves(data[index + 4 : index + 4 + size])
        index += 4 + size
    return found


@FUZZ
@given(packets)
def test_split_packet_flattens_valid_packets_in_order(data):
    """Unmutated: every message comes out, in order, unless bundles nest past the limit."""
    found = split_or_malformed(data)
    if depth(data) > MAX_BUNDLE_DEPTH:
        assert found is None
        return
    assert found is not None
    assert [m.dgram for m in found] == leaves(data)


# -- Controls --------------------------------------------------------------------------


@FUZZ
@given(st.sampled_from(sorted(DIALECTS)), st.lists(st.one_of(st.binary(max_size=2048), mutated(), packets),
                                                   min_size=1, max_size=3))
@pytest.mark.slow
def test_controls_never_raise_count_every_datagram_and_stay_in_range(dialect, datagrams):
    controls = Controls(DIALECTS[dialect], latent_size=LATENT)
    for data in datagrams:
        feed(controls, data)
    assert controls.stats["datagrams"] == len(datagrams)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(sorted(CONTROL_RANGES) + ["xy", "z"]),
                          st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), max_size=3)),
                min_size=1, max_size=8))
def test_canonical_controls_stay_in_range_whatever_the_values(changes):
    """Every canonical address with any float values, NaN and infinities among them."""
    controls = Controls(latent_size=LATENT)
    for name, values in changes:
        builder = OscMessageBuilder(address=f"/vrae/{name}")
        for value in values:
            builder.add_arg(value, "f")
        feed(controls, builder.build().dgram)
