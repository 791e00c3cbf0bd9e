"""The ``jack_server`` fixture, for every test module (``tests/conftest.py`` loads this as a plugin)::

    from vrae_live.testing.jack import MidiDump

    @pytest.mark.jack
    def test_something(jack_server):
        with MidiDump("vrae-live:vrae-live") as dump:
            ...
            events = dump.wait_for(2)

``jack_server`` is one private :class:`~vrae_live.testing.jack.JackServer` (``jackd -S
--no-realtime -d dummy -r 48000 -p 64``) for the whole session. Without jackd the JACK tests
skip, unless the environment variable ``CI`` is set: then they fail, so a CI image that lost
JACK is noticed.
"""

from __future__ import annotations

import os

import pytest

from vrae_live.testing.jack import JackServer, missing_jack_tools


def skip_unless_ci(message: str) -> None:
    """A tool the test needs is missing: skip on a user's machine, fail in CI (where CI is set)."""
    if os.environ.get("CI"):
        pytest.fail(message + "; CI is set, so this is an error, not a skip")
    pytest.skip(message)


def require_jack_tools() -> None:
    missing = missing_jack_tools()
    if missing:
        skip_unless_ci(f"JACK tools not found: {', '.join(missing)} (Debian: apt install jackd2)")


@pytest.fixture(scope="session")
def jack_server():
    """A private JACK server (dummy driver, 48 kHz, 64-frame periods) for the whole session."""
    require_jack_tools()
    server = JackServer(name=f"vrae-test-{os.getpid()}")
    try:
        server.start()
    except RuntimeError as err:
        pytest.fail(str(err))
    try:
        yield server
    finally:
        server.stop()
