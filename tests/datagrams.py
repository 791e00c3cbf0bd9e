"""OSC datagrams built in code, for the tests of the controls, the controller dialects and the packets."""

from __future__ import annotations

import struct

from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from vrae_live.live.controls import Controls


def message(address: str, *args, types: str | None = None):
    """An OscMessage; ``types`` forces type tags (e.g. "d" for a double), else python-osc infers them."""
    builder = OscMessageBuilder(address=address)
    for i, arg in enumerate(args):
        builder.add_arg(arg, types[i] if types else None)
    return builder.build()


def dgram(address: str, *args, types: str | None = None) -> bytes:
    return message(address, *args, types=types).dgram


def bundle(*contents) -> bytes:
    builder = OscBundleBuilder(IMMEDIATELY)
    for content in contents:
        builder.add_content(content)
    return builder.build().dgram


def bundle_bytes(*elements: bytes) -> bytes:
    """A bundle framed by hand, so element sizes can lie."""
    body = b"".join(struct.pack(">i", len(e)) + e for e in elements)
    return b"#bundle\x00" + struct.pack(">Q", 1) + body


def fed(*datagrams: bytes, controls: Controls | None = None) -> Controls:
    controls = controls or Controls()
    for data in datagrams:
        controls.handle_datagram(data)
    return controls


def bad_counts(controls: Controls) -> dict[str, int]:
    return {k: v for k, v in controls.stats.items() if k not in ("datagrams", "accepted")}
