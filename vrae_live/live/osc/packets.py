"""OSC packet framing: one UDP datagram to the messages in it, or MalformedPacket.

Pure: bytes in, python-osc messages out.
"""

from __future__ import annotations

import struct

from pythonosc import osc_message
from pythonosc.parsing import osc_types


class MalformedPacket(ValueError):
    """A datagram that is not an OSC packet we can parse; ``reason`` names the stats key."""

    def __init__(self, message: str, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


_BUNDLE_PREFIX = b"#bundle\x00"
_BUNDLE_HEADER = len(_BUNDLE_PREFIX) + 8  # the prefix and a 64-bit time tag
MAX_BUNDLE_DEPTH = 4  # no controller nests deeper; python-osc itself recurses without a bound
# Type tags python-osc parses. It skips any other tag with a warning but does not
# skip its bytes, so the arguments after it would be read from the wrong place.
_PARSEABLE_TYPE_TAGS = frozenset("ihfdsbrmtTFN[]")


def split_packet(data: bytes) -> list[osc_message.OscMessage]:
    """The OSC messages in one datagram, bundles flattened in order.

    Bundle time tags are ignored: a control is a latest value, applied at once.
    Raises ``MalformedPacket`` and nothing else for bytes that do not parse.

    Bundle framing is walked here rather than by python-osc's ``OscBundle``,
    which loops forever on a negative element size; each message is parsed by
    python-osc's ``OscMessage``.
    """
    messages: list[osc_message.OscMessage] = []
    try:
        _collect_messages(bytes(data), 0, messages)
    except (osc_message.ParseError, osc_types.ParseError, UnicodeDecodeError) as err:
        raise MalformedPacket(f"not parseable: {err}") from err
    return messages


def _collect_messages(data: bytes, depth: int, out: list[osc_message.OscMessage]) -> None:
    # OSC 1.0: the size of every packet, and of every bundle element, is a positive multiple of 4.
    if not data or len(data) % 4:
        raise MalformedPacket(f"size {len(data)} is not a positive multiple of 4")
    if data.startswith(_BUNDLE_PREFIX):
        if depth >= MAX_BUNDLE_DEPTH:
            raise MalformedPacket(f"bundles nested deeper than {MAX_BUNDLE_DEPTH}")
        if len(data) < _BUNDLE_HEADER:
            raise MalformedPacket("bundle shorter than its header")
        index = _BUNDLE_HEADER
        while index < len(data):
            if index + 4 > len(data):
                raise MalformedPacket("bundle element size cut off")
            (size,) = struct.unpack_from(">i", data, index)
            index += 4
            if size <= 0 or index + size > len(data):
                raise MalformedPacket(f"bundle element size {size} out of bounds")
            _collect_messages(data[index : index + size], depth + 1, out)
            index += size
    elif data.startswith(b"/"):
        _check_arguments(data)
        out.append(osc_message.OscMessage(data))
    else:
        raise MalformedPacket("neither an OSC message nor a bundle")


_ARGUMENT_SIZES = {"i": 4, "f": 4, "r": 4, "m": 4, "h": 8, "d": 8, "t": 8}  # bytes; T F N [ ] take none


def _check_arguments(data: bytes) -> None:
    """Type tags python-osc can parse, and arguments that fill the message exactly.

    python-osc reads a float cut short, or missing at the end, as if padded with
    zeros; a truncated /vrae/xy would move the pad to 0.
    """
    _, index = osc_types.get_string(data, 0)
    if index >= len(data):
        return  # no type tag string: a message without arguments
    tags, index = osc_types.get_string(data, index)
    if not tags.startswith(","):
        raise MalformedPacket("type tag string without its leading comma")
    unknown = set(tags[1:]) - _PARSEABLE_TYPE_TAGS
    if unknown:
        raise MalformedPacket(f"unsupported type tag(s) {sorted(unknown)}", reason="unsupported_type")
    for tag in tags[1:]:
        if tag == "s":
            _, index = osc_types.get_string(data, index)
        elif tag == "b":
            _, index = osc_types.get_blob(data, index)
        else:
            index += _ARGUMENT_SIZES.get(tag, 0)
    if index != len(data):
        raise MalformedPacket(f"arguments take {index} bytes of a {len(data)}-byte message")
