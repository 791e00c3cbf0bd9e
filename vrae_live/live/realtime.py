"""Realtime scheduling for the thread that keeps the frame clock (Linux).

Under ``SCHED_FIFO`` the clock's thread preempts every ordinary process the moment its
sleep ends, so other work on the machine (a DAW's editing, a browser, a training run)
does not delay its ticks or the notes it sends on them. Measured through JACK beside a
busy process: no note later than JACK's own grain, where at normal priority one came
7.5 ms late (docs/benchmarks.md).
The priority sits below JACK's own threads (the server runs at 10, its clients' process
threads at 5 by default), so the performer never holds up the MIDI it hands to JACK.

``SCHED_RESET_ON_FORK`` keeps the privilege to this one thread: threads it starts later
(torch's worker pool, say) run at normal priority.

Linux lets root, or a user whose ``rtprio`` limit allows it (Debian's jackd2 package
offers the ``audio`` group a limit of 95), ask for this; elsewhere the clock runs at
normal priority and says why.
"""

from __future__ import annotations

import os
import threading

PRIORITY = 4  # SCHED_FIFO priority: above every normal thread, below JACK's (5 and 10)


def make_realtime(priority: int = PRIORITY) -> str | None:
    """Run the calling thread under ``SCHED_FIFO`` at ``priority``.

    Returns None when it took effect, else why not, in words for the musician.
    """
    if not (hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_FIFO")):
        return "realtime scheduling is not available on this platform"
    policy = os.SCHED_FIFO | getattr(os, "SCHED_RESET_ON_FORK", 0)
    try:
        os.sched_setscheduler(0, policy, os.sched_param(priority))
    except PermissionError:
        return ("realtime scheduling not permitted: run as a user with an rtprio limit "
                "(e.g. the 'audio' group, see the README)")
    except OSError as err:
        return f"realtime scheduling failed: {err.strerror or err}"
    return None


def realtime_permitted(priority: int = PRIORITY) -> str | None:
    """Whether ``make_realtime`` would succeed here: tried on a throwaway thread."""
    answer: list[str | None] = []
    probe = threading.Thread(target=lambda: answer.append(make_realtime(priority)), name="vrae-rt-probe")
    probe.start()
    probe.join()
    return answer[0]
