"""Controller dialects: each preset's addresses, scales and feedback, and presets that are wrong."""

from __future__ import annotations

import pytest

from tests.datagrams import dgram, fed
from vrae_live.errors import ConfigError
from vrae_live.live.controllers import CANONICAL, controller_from_dict, list_controllers, load_controller
from vrae_live.live.controls import Controls


def test_touchosc_pad_sends_y_then_x():
    controls = fed(dgram("/1/xy1", 0.8, 0.3), controls=Controls(load_controller("touchosc")))
    assert (controls.snapshot().x, controls.snapshot().y) == (pytest.approx(0.3), pytest.approx(0.8))


def test_touchosc_faders_buttons():
    controls = Controls(load_controller("touchosc"))
    fed(dgram("/1/fader1", 0.25), dgram("/1/fader2", 0.75), dgram("/1/toggle1", 1.0), controls=controls)
    state = controls.snapshot()
    assert (state.density, state.temperature, state.hold) == (0.25, 1.5, True)
    fed(dgram("/1/push1", 1.0), dgram("/1/push1", 0.0), controls=controls)
    assert controls.snapshot().panic_count == 1  # on press only
    assert controls.stats["button_release"] == 1


def test_open_stage_control_xy_in_order():
    controls = fed(dgram("/xy", 0.8, 0.3), dgram("/density", 0.1), controls=Controls(load_controller("open-stage-control")))
    state = controls.snapshot()
    assert (state.x, state.y, state.density) == (pytest.approx(0.8), pytest.approx(0.3), pytest.approx(0.1))


@pytest.mark.parametrize("dot", [True, False])
def test_lemur_axes_arrive_separately(dot):
    x, y = ("/Pad.x", "/Pad.y") if dot else ("/Pad/x", "/Pad/y")
    controls = Controls(load_controller("lemur"))
    fed(dgram(x, 0.9), controls=controls)
    assert (controls.snapshot().x, controls.snapshot().y) == (pytest.approx(0.9), 0.5)  # x alone
    fed(dgram(y, 0.1), controls=controls)
    assert (controls.snapshot().x, controls.snapshot().y) == (pytest.approx(0.9), pytest.approx(0.1))
    fed(dgram(x, 0.1, 0.2), controls=controls)  # two balls: a list
    assert controls.stats["wrong_args"] == 1


def test_canonical_addresses_accepted_alongside_a_dialect():
    for name in list_controllers():
        controls = fed(dgram("/vrae/xy", 0.1, 0.2), dgram("/vrae/velocity", 64), controls=Controls(load_controller(name)))
        assert controls.snapshot().velocity == 64 and controls.snapshot().x == pytest.approx(0.1), name


def test_pair_swap_invert_and_ranges():
    preset = {"xy": {"address": "/pad", "swap": True, "invert_y": True, "range_x": [0, 127], "range_y": [-1.0, 1.0]}}
    controls = Controls(controller_from_dict(preset))
    # sends (y, x): y = -0.5 in -1..1 is 0.25, inverted 0.75; x = 127 is 1.0
    fed(dgram("/pad", -0.5, 127), controls=controls)
    assert (controls.snapshot().x, controls.snapshot().y) == (pytest.approx(1.0), pytest.approx(0.75))
    fed(dgram("/pad", 0.0, 200), controls=controls)  # beyond the pad's range: clamped
    assert controls.snapshot().x == 1.0 and controls.stats["clamped"] == 1


def test_single_axis_invert_and_range():
    preset = {"x": {"address": "/knob", "range": [0, 127], "invert": True}, "velocity": {"address": "/vel"}}
    controls = fed(dgram("/knob", 127), dgram("/vel", 100), controls=Controls(controller_from_dict(preset)))
    assert controls.snapshot().x == pytest.approx(0.0)
    assert controls.snapshot().velocity == 100  # without a range, the control's own units


def test_fader_range_maps_onto_the_control_range():
    preset = {"transpose": {"address": "/t", "range": [0.0, 1.0]}, "channel": {"address": "/c", "range": [0, 15]}}
    controls = fed(dgram("/t", 0.75), dgram("/c", 15), controls=Controls(controller_from_dict(preset)))
    assert (controls.snapshot().transpose, controls.snapshot().channel) == (12, 16)


@pytest.mark.parametrize("name", ["touchosc", "open-stage-control", "lemur"])
@pytest.mark.parametrize("x, y", [(0.0, 1.0), (0.3, 0.8), (1.0, 0.0)])
def test_position_feedback_round_trips_through_the_dialect(name, x, y):
    controller = load_controller(name)
    controls = Controls(controller)
    for address, values in controller.position_feedback(x, y):
        controls.handle_datagram(dgram(address, *values, types="f" * len(values)))
    assert (controls.snapshot().x, controls.snapshot().y) == (pytest.approx(x), pytest.approx(y))


def test_canonical_feedback():
    assert CANONICAL.position_feedback(0.1, 0.2) == [("/vrae/xy", [0.1, 0.2])]


# -- loading presets


def test_presets_ship():
    assert {"touchosc", "open-stage-control", "lemur"} <= set(list_controllers())
    assert load_controller("touchosc").pair.swap is True
    assert load_controller("touchosc").status_address == "/1/label1"


def test_load_by_path(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[xy]\naddress = "/mine"\nrange = [-1.0, 1.0]\n')
    controller = load_controller(str(path))
    assert controller.name == "mine" and controller.pair.addresses == ("/mine",)


@pytest.mark.parametrize(
    "preset, words",
    [
        ({"xy": {"address": "/a", "swapp": True}}, ["swapp", "known", "swap", "invert_x", "range_y"]),
        ({"pad": {"address": "/a"}}, ["pad", "known", "xy", "density", "panic"]),
        ({"xy": {"swap": True}}, ["address", "missing"]),
        ({"xy": {"address": "no-slash"}}, ["OSC address"]),
        ({"xy": {"address": "/vrae/xy"}}, ["canonical"]),
        ({"xy": {"address": "/a", "range": [1, 1]}}, ["range"]),
        ({"xy": {"address": "/a", "range": [0, "1"]}}, ["range"]),
        ({"xy": {"address": "/a", "swap": "yes"}}, ["swap", "true or false"]),
        ({"x": {"address": "/a"}, "y": {"address": "/a"}}, ["/a", "[x]", "[y]"]),
        ({"hold": {"address": "/h", "range": [0, 1]}}, ["range", "known: address"]),
        ({"xy": "/a"}, ["table"]),
        ({"voices": {"xy": "/m", "touch": "/m/touch/{k}"}}, ["[voices] touch", "no {k}"]),
        ({"voices": {"xy": "/m", "first": -1}}, ["[voices] first", "at least 0"]),
        ({"x": {"address": "/a", "range": [0, 1.5e400]}}, ["[x] range[1]", "finite"]),
    ],
)
def test_bad_presets_say_what_is_wrong(preset, words):
    with pytest.raises(ConfigError) as err:
        controller_from_dict(preset, source="test.toml")
    message = str(err.value)
    assert message.startswith("test.toml: ") and "\n" not in message, message  # one line: the file, the field
    for word in words:
        assert word in message


def test_unknown_preset_lists_the_known():
    with pytest.raises(ConfigError, match="touchosc.*or a path"):
        load_controller("no-such-pad")
