"""Controls: every canonical address and every kind of bad input, as raw datagram bytes."""

from __future__ import annotations

import logging
import math
import struct
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder

from tests.datagrams import bad_counts, bundle, bundle_bytes, dgram, fed, message
from vrae_live.live.controllers import CANONICAL, load_controller
from vrae_live.live.controls import Z_LIMIT, Controls, ControlState
from vrae_live.live.osc.packets import MAX_BUNDLE_DEPTH, split_packet

# -- canonical addresses


def test_defaults():
    state = Controls().snapshot()
    assert state == ControlState()
    assert (state.x, state.y, state.z, state.density, state.hold, state.version) == (0.5, 0.5, None, 0.5, False, 0)


def test_xy_sets_position_and_bumps_version():
    controls = fed(dgram("/vrae/xy", 0.25, 0.75))
    state = controls.snapshot()
    assert (state.x, state.y, state.version) == (0.25, 0.75, 1)
    assert controls.stats["accepted"] == 1 and bad_counts(controls) == {}


@pytest.mark.parametrize(
    "address, args, types, field, expected",
    [
        ("/vrae/density", (0.8,), "f", "density", pytest.approx(0.8)),
        ("/vrae/temperature", (1.5,), "f", "temperature", 1.5),
        ("/vrae/temperature", (0.0,), "f", "temperature", 0.0),
        ("/vrae/velocity", (100,), "i", "velocity", 100),
        ("/vrae/velocity", (99.6,), "f", "velocity", 100),
        ("/vrae/velocity", (0,), "i", "velocity", 0),
        ("/vrae/transpose", (-12,), "i", "transpose", -12),
        ("/vrae/transpose", (6.6,), "f", "transpose", 7),
        ("/vrae/channel", (10,), "i", "channel", 10),
        ("/vrae/channel", (2.0,), "d", "channel", 2),
        ("/vrae/hold", (1,), "i", "hold", True),
        ("/vrae/hold", (0.5,), "f", "hold", True),
        ("/vrae/hold", (True,), "T", "hold", True),
        ("/vrae/density", (1,), "h", "density", 1.0),
    ],
)
def test_canonical_scalar_controls(address, args, types, field, expected):
    controls = fed(dgram(address, *args, types=types))
    assert getattr(controls.snapshot(), field) == expected
    assert bad_counts(controls) == {}


def test_hold_off_again():
    state = fed(dgram("/vrae/hold", 1), dgram("/vrae/hold", 0.0)).snapshot()
    assert state.hold is False and state.version == 2


def test_z_any_length_and_xy_clears_it():
    controls = fed(dgram("/vrae/z", 0.5, -1.0, 2.0))
    assert controls.snapshot().z == (0.5, -1.0, 2.0)
    fed(dgram("/vrae/xy", 0.1, 0.2), controls=controls)
    assert controls.snapshot().z is None
    assert (controls.snapshot().x, controls.snapshot().y) == pytest.approx((0.1, 0.2))


def test_z_length_checked_against_latent_size():
    controls = fed(dgram("/vrae/z", 1.0, 2.0, 3.0), dgram("/vrae/z", 1.0, 2.0), controls=Controls(latent_size=2))
    assert controls.snapshot().z == (1.0, 2.0)
    assert controls.stats["wrong_args"] == 1


def test_z_clamped_to_limit():
    controls = fed(dgram("/vrae/z", 1e30, -50.0, 0.0))
    assert controls.snapshot().z == (Z_LIMIT, -Z_LIMIT, 0.0)
    assert controls.stats["clamped"] == 1


def test_panic_counts_with_any_arguments():
    controls = fed(dgram("/vrae/panic"), dgram("/vrae/panic", "now", 3), dgram("/vrae/panic", 0))
    assert controls.snapshot().panic_count == 3
    assert bad_counts(controls) == {}


def test_hold_freezes_position_until_released():
    controls = fed(dgram("/vrae/xy", 0.2, 0.2), dgram("/vrae/hold", 1), dgram("/vrae/xy", 0.9, 0.9), dgram("/vrae/z", 1.0))
    state = controls.snapshot()
    assert (state.x, state.y, state.z) == (pytest.approx(0.2), pytest.approx(0.2), None)
    assert controls.stats["held"] == 2
    fed(dgram("/vrae/density", 0.3), controls=controls)  # other controls still move while held
    assert controls.snapshot().density == pytest.approx(0.3)
    fed(dgram("/vrae/hold", 0), dgram("/vrae/xy", 0.9, 0.9), controls=controls)
    assert controls.snapshot().x == pytest.approx(0.9)


# -- out of range: clamped and counted


@pytest.mark.parametrize(
    "address, value, field, expected",
    [
        ("/vrae/density", 1.5, "density", 1.0),
        ("/vrae/density", -0.1, "density", 0.0),
        ("/vrae/temperature", 3.0, "temperature", 2.0),
        ("/vrae/velocity", 300, "velocity", 127),
        ("/vrae/velocity", -5, "velocity", 0),
        ("/vrae/transpose", 40, "transpose", 24),
        ("/vrae/transpose", -40, "transpose", -24),
        ("/vrae/channel", 0, "channel", 1),
        ("/vrae/channel", 17, "channel", 16),
    ],
)
def test_out_of_range_is_clamped_and_counted(address, value, field, expected):
    controls = fed(dgram(address, value))
    assert getattr(controls.snapshot(), field) == expected
    assert controls.stats["clamped"] == 1 and controls.stats["accepted"] == 1


def test_xy_clamped_once_per_message():
    controls = fed(dgram("/vrae/xy", -1.0, 2.0))
    assert (controls.snapshot().x, controls.snapshot().y) == (0.0, 1.0)
    assert controls.stats["clamped"] == 1


# -- bad input: ignored and counted by reason


VALID = dgram("/vrae/xy", 0.25, 0.75)


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "malformed"),
        (b"hello world!", "malformed"),
        (b"/vrae", "malformed"),  # no terminating null
        (VALID[:-2], "malformed"),  # truncated float
        (VALID[:-4], "malformed"),  # the second float missing entirely
        (VALID[:10], "malformed"),  # cut inside the type tag
        (b"/vrae/xy\x00\x00\x00\x00ff\x00\x00" + VALID[-8:], "malformed"),  # type tag without its comma
        (b"/\xff\xfe\x00", "malformed"),  # address not UTF-8
        (b"#bundle\x00\x00\x00", "malformed"),  # bundle cut in its time tag
        (bundle_bytes(VALID)[:-4], "malformed"),  # element shorter than its size says
        (dgram("/vrae/xy", 0.5, types="f").replace(b",f\x00\x00", b",c\x00\x00"), "unsupported_type"),
        (dgram("/vrae/xy", "a", "b"), "wrong_type"),
        (dgram("/vrae/xy", b"blob", 0.5), "wrong_type"),
        (dgram("/vrae/density", "loud"), "wrong_type"),
        (dgram("/vrae/z", 0.1, "x"), "wrong_type"),
        (dgram("/vrae/xy", 0.5), "wrong_args"),
        (dgram("/vrae/xy", 0.5, 0.5, 0.5), "wrong_args"),
        (dgram("/vrae/xy"), "wrong_args"),
        (dgram("/vrae/density", 0.1, 0.2), "wrong_args"),
        (dgram("/vrae/z"), "wrong_args"),
        (dgram("/vrae/xy", math.nan, 0.5, types="ff"), "not_finite"),
        (dgram("/vrae/xy", 0.5, math.inf, types="ff"), "not_finite"),
        (dgram("/vrae/density", -math.inf, types="f"), "not_finite"),
        (dgram("/vrae/z", 0.0, math.nan, types="fd"), "not_finite"),
        (dgram("/vrae/nope", 0.5), "unknown_address"),
        (dgram("/vrae/*", 0.5, 0.5), "unknown_address"),  # address patterns are not expanded
        (dgram("/1/xy1", 0.5, 0.5), "unknown_address"),  # a dialect address without its preset
        (bundle_bytes(), "empty"),
    ],
)
def test_bad_input_is_ignored_and_counted(data, reason):
    controls = fed(data)
    assert controls.snapshot() == ControlState()
    assert bad_counts(controls) == {reason: 1}
    assert controls.stats["datagrams"] == 1


def test_negative_bundle_element_size_does_not_hang():
    # python-osc's OscBundle loops forever on this datagram.
    data = bundle_bytes() + struct.pack(">i", -4)
    started = time.monotonic()
    controls = fed(data)
    assert time.monotonic() - started < 1.0
    assert bad_counts(controls) == {"malformed": 1}


def test_bundles_nested_too_deep_are_malformed():
    data = VALID
    for _ in range(MAX_BUNDLE_DEPTH + 1):
        data = bundle_bytes(data)
    assert bad_counts(fed(data)) == {"malformed": 1}


def test_a_bad_message_in_a_bundle_leaves_the_others():
    data = bundle(message("/vrae/density", "x"), message("/vrae/xy", 0.1, 0.9), message("/nope"))
    controls = fed(data)
    assert controls.snapshot().y == pytest.approx(0.9)
    assert bad_counts(controls) == {"wrong_type": 1, "unknown_address": 1}


# -- bundles


def test_bundle_applies_each_message_in_order():
    controls = fed(bundle(message("/vrae/xy", 0.1, 0.2), message("/vrae/density", 0.7), message("/vrae/xy", 0.3, 0.4)))
    state = controls.snapshot()
    assert (state.x, state.y, state.density, state.version) == (
        pytest.approx(0.3),
        pytest.approx(0.4),
        pytest.approx(0.7),
        3,
    )


def test_nested_bundle():
    inner = OscBundleBuilder(IMMEDIATELY)
    inner.add_content(message("/vrae/channel", 5))
    controls = fed(bundle(inner.build(), message("/vrae/transpose", 3)))
    assert (controls.snapshot().channel, controls.snapshot().transpose) == (5, 3)


def test_split_packet_gives_python_osc_messages():
    (m,) = split_packet(VALID)
    assert m.address == "/vrae/xy" and m.params == [0.25, 0.75]


# -- fuzzing: nothing raises, every datagram is counted


def assert_counted(controls: Controls, data: bytes) -> None:
    before = controls.stats
    controls.handle_datagram(data)  # must not raise
    after = controls.stats
    assert after["datagrams"] == before["datagrams"] + 1
    outcomes = sum(after.values()) - after["datagrams"] - (sum(before.values()) - before["datagrams"])
    assert outcomes >= 1, "a datagram left no trace in the stats"
    assert after["error"] == 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=256))
def test_random_bytes_never_raise_and_are_counted(data):
    assert_counted(Controls(CANONICAL), data)


oscish = st.builds(
    lambda address, tags, payload, cut: (address + b"\x00" * (4 - len(address) % 4)
                                         + b"," + tags + b"\x00" * (4 - (len(tags) + 1) % 4) + payload)[: cut or None],
    st.sampled_from([b"/vrae/xy", b"/vrae/z", b"/vrae/density", b"/vrae/hold", b"/vrae/panic", b"/1/xy1", b"/Pad.x", b"/x"]),
    st.text(alphabet="ifdhsbTFNrmt[]cS", max_size=6).map(str.encode),
    st.binary(max_size=48),
    st.integers(min_value=0, max_value=64),
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.lists(oscish, min_size=1, max_size=3), st.booleans())
def test_osc_shaped_garbage_never_raises_and_is_counted(parts, as_bundle):
    data = bundle_bytes(*parts) if as_bundle else parts[0]
    controls = Controls(load_controller("touchosc"), latent_size=2)
    assert_counted(controls, data)
    state = controls.snapshot()
    assert 0.0 <= state.x <= 1.0 and 0.0 <= state.y <= 1.0
    assert all(math.isfinite(v) for v in (state.x, state.y, state.density, state.temperature))


# -- waiting for a change


def test_wait_for_version_times_out_with_none():
    assert Controls().wait_for_version(1, timeout=0.01) is None


def test_wait_for_version_wakes_on_a_change_from_another_thread():
    controls = Controls()
    sender = threading.Thread(target=controls.handle_datagram, args=(VALID,))
    sender.start()
    state = controls.wait_for_version(1, timeout=5.0)
    sender.join()
    assert state is not None and state.x == 0.25


def test_ignored_messages_are_shown_with_verbose_without_flooding(caplog):
    controls = Controls()
    with caplog.at_level(logging.DEBUG, logger="vrae_live.live.controls"):
        for _ in range(150):
            controls.handle_message("/nowhere", [1.0])
        controls.handle_message("/vrae/xy", ["left", 0.5])
    lines = [r.getMessage() for r in caplog.records]
    assert [line for line in lines if "unknown_address" in line] == [
        f"OSC ignored (unknown_address, {n} so far): /nowhere" for n in (1, 10, 100)
    ]
    assert any("wrong_type" in line and "/vrae/xy" in line for line in lines)
    assert controls.stats["unknown_address"] == 150
