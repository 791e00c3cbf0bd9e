"""The web page's messages (live/web/protocol.py), and its server in this process: the files it
serves and refuses, the token, the Origin, --allow, and what a page's messages do to Controls."""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.request

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from vrae_live.data.attributes import pad_labels
from vrae_live.live.controls import Controls
from vrae_live.live.web import protocol
from vrae_live.live.web.protocol import Ignored, RateLimit, parse_control
from vrae_live.live.web.server import WebServer
from vrae_live.testing.jack import poll

TOKEN = "test-token-1234"


@pytest.mark.parametrize("text, expected", [
    ('{"set": "xy", "value": [0.2, 0.8], "seq": 3}', ("/vrae/xy", [0.2, 0.8], 3)),
    ('{"set": "density", "value": 0.7}', ("/vrae/density", [0.7], None)),
    ('{"set": "hold", "value": 1}', ("/vrae/hold", [1], None)),
    ('{"set": "panic"}', ("/vrae/panic", [], None)),
    ('{"set": "key", "value": 7}', ("/vrae/key", [7], None)),
    ('{"set": "scale", "value": "dorian"}', ("/vrae/scale", ["dorian"], None)),
    ('{"set": "key-strength", "value": 0.5}', ("/vrae/key-strength", [0.5], None)),
])
def test_a_control_becomes_the_canonical_osc_message(text, expected):
    assert parse_control(text) == expected


@pytest.mark.parametrize("text, reason", [
    ("{not json", "bad_json"),
    ("[1, 2]", "bad_json"),
    ("x" * (protocol.MAX_MESSAGE + 1), "oversized"),
    (b'{"set": "xy"}', "binary"),
    ('{"set": "z", "value": [1, 2]}', "unknown_control"),
    ('{"set": "channel", "value": 2}', "unknown_control"),
    ('{"value": 1}', "unknown_control"),
    ('{"set": "xy", "value": [0, 0], "seq": -1}', "bad_seq"),
    ('{"set": "xy", "value": [0, 0], "seq": "1"}', "bad_seq"),
])
def test_what_is_not_a_control_is_ignored_with_its_reason(text, reason):
    with pytest.raises(Ignored) as ignored:
        parse_control(text)
    assert ignored.value.reason == reason


def test_values_are_checked_by_controls_as_osc_values_are():
    controls = Controls()
    for text in ('{"set": "xy", "value": [0.1, "a"]}', '{"set": "xy", "value": [0.1]}',
                 '{"set": "density", "value": null}', '{"set": "xy", "value": [0.25, 2.0]}'):
        controls.handle_message(*parse_control(text)[:2])
    state = controls.snapshot()
    assert (state.x, state.y, state.touched) == (0.25, 1.0, True)
    assert controls.stats["accepted"] == 1 and controls.stats["clamped"] == 1
    assert controls.stats["wrong_type"] == 2 and controls.stats["wrong_args"] == 1


def test_rate_limit_allows_bursts_then_the_rate():
    now = [0.0]
    limit = RateLimit(rate=10, burst=5, clock=lambda: now[0])
    assert [limit.allow() for _ in range(7)] == [True] * 5 + [False] * 2
    now[0] += 0.25  # 2.5 tokens
    assert [limit.allow() for _ in range(3)] == [True, True, False]


def test_state_message_is_json_without_the_latent_vector():
    controls = Controls(latent_size=3)
    controls.handle_message("/vrae/z", [0.1, 0.2, 0.3])
    message = json.loads(protocol.state_message(controls.snapshot(), {"at": [0.5, 0.5]}))
    assert message["type"] == "state" and message["controls"]["z_set"] is True and "z" not in message["controls"]


@pytest.fixture
def web():
    controls = Controls()
    with WebServer(controls, "127.0.0.1", 0, token=TOKEN, window_map=None, status=lambda: {"at": [0.5, 0.5]}) as server:
        yield server


def page(server, token=TOKEN, origin=None):
    host, port = server.address
    return connect(f"ws://{host}:{port}/ws?token={token}", origin=origin or f"http://{host}:{port}")


def get(server, path):
    host, port = server.address
    with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as response:
        return response.status, response.headers["Content-Type"], response.read()


def test_serves_the_page_files_and_nothing_else(web):
    status, kind, body = get(web, "/")
    assert status == 200 and kind.startswith("text/html") and b'src="app.js"' in body
    for name in ("/app.js", "/map.js", "/socket.js"):
        assert get(web, name)[1].startswith("text/javascript")
    for path in ("/server.py", "/../server.py", "/static/app.js", "/%2e%2e/server.py", "/ws"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            get(web, path)
        assert refused.value.code in (403, 404), path


def test_a_page_move_is_applied_like_an_osc_move_and_acknowledged(web):
    with page(web) as ws:
        hello = json.loads(ws.recv(timeout=5))
        assert hello["type"] == "hello" and hello["map"] is None and hello["ranges"]["temperature"] == [0.0, 2.0]
        assert hello["axes"] is None  # a pad of the songs' directions: no labels at its edges
        ws.send(json.dumps({"set": "xy", "value": [0.1, 0.9], "seq": 7}))
        while (message := json.loads(ws.recv(timeout=5)))["type"] != "applied":
            pass
        assert message["seq"] == 7
        state = web.controls.snapshot()
        assert (state.x, state.y, state.touched) == (0.1, 0.9, True)
        web.controls.handle_message("/vrae/xy", [0.7, 0.3])  # a move from another controller is shown
        while not ((m := json.loads(ws.recv(timeout=5)))["type"] == "state" and m["controls"]["x"] == 0.7):
            pass


def test_bad_and_oversized_messages_and_floods_are_counted_and_ignored(web):
    with page(web) as ws:
        ws.recv(timeout=5)
        ws.send("{oops")
        ws.send("x" * 5000)
        for i in range(200):  # far over the burst, at once
            ws.send(json.dumps({"set": "density", "value": 0.3}))
        ws.send(json.dumps({"set": "panic", "seq": 1}))  # may itself be dropped as flood: wait on the count
        poll(lambda: web.stats["messages"] == 203, timeout=5, what="every message read")
    assert web.stats["bad_json"] == 1 and web.stats["oversized"] == 1 and web.stats["flood"] > 0
    assert web.controls.snapshot().density == 0.3


@pytest.mark.parametrize("token, origin", [("wrong-token-000", None), ("", None), (TOKEN, "http://evil.example"),
                                           (TOKEN, "null")])
def test_a_wrong_token_or_a_foreign_origin_is_refused(web, token, origin):
    with pytest.raises(InvalidStatus) as refused:
        page(web, token, origin)
    assert refused.value.response.status_code == 403
    assert web.stats["refused"] == 1 and web.stats["pages"] == 0


@pytest.mark.slow
def test_allow_refuses_other_senders_the_page_and_the_websocket():
    with WebServer(Controls(), "127.0.0.1", 0, token=TOKEN, allow=(ipaddress.ip_network("10.0.0.0/8"),)) as server:
        with pytest.raises(urllib.error.HTTPError) as refused:
            get(server, "/")
        assert refused.value.code == 403
        with pytest.raises(InvalidStatus):
            page(server)
        assert server.stats["refused"] == 2


def test_a_port_in_use_is_one_clear_error(web):
    from vrae_live.errors import VraeLiveError

    with pytest.raises(VraeLiveError, match="--web-port"):
        WebServer(Controls(), "127.0.0.1", web.address[1]).start()


def test_a_pad_of_named_axes_sends_its_edges_labels_to_the_page():
    labels = pad_labels(("onsets", "register"))
    with WebServer(Controls(), "127.0.0.1", 0, token=TOKEN, axes=labels) as server, page(server) as ws:
        hello = json.loads(ws.recv(timeout=5))
    assert hello["axes"] == {"x": {"name": "onsets", "low": "sparser", "high": "busier"},
                             "y": {"name": "register", "low": "lower", "high": "higher"}}


def test_the_page_is_told_the_keys_and_scales_and_sets_them_as_osc_does():
    with WebServer(Controls(), "127.0.0.1", 0, token=TOKEN) as server, page(server) as ws:
        hello = json.loads(ws.recv(timeout=5))
        assert hello["keys"][:2] == ["C", "C#"] and len(hello["keys"]) == 12
        assert "dorian" in hello["scales"] and "blues" in hello["scales"]
        assert hello["ranges"]["key-strength"] == [0.0, 1.0]
        assert hello["controls"]["key"] is None and hello["controls"]["chord"] == []
        for seq, (name, value) in enumerate((("key", 9), ("scale", "minor"), ("key-strength", 1.0), ("key", "Q"))):
            ws.send(json.dumps({"set": name, "value": value, "seq": seq}))
        poll(lambda: server.controls.stats["unknown_name"], timeout=5, what="the last message")  # applied in order
    server.controls.set_chord(frozenset({9, 0, 4}))
    state = server.controls.snapshot()
    assert (state.key, state.scale, state.key_strength) == (9, "minor", 1.0)
    assert server.controls.stats["unknown_name"] == 1
    assert json.loads(protocol.state_message(state, {}))["controls"]["chord"] == [0, 4, 9]
