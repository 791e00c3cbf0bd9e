"""The clock's thread asks for realtime priority and keeps it to itself."""

import os
import sys
import threading

import pytest

from vrae_live.live.realtime import PRIORITY, make_realtime, realtime_permitted

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SCHED_FIFO is Linux's")


def _in_thread(fn):
    result: list = []
    errors: list = []

    def run():
        try:
            result.append(fn())
        except BaseException as err:  # noqa: BLE001 -- re-raised in the test's thread
            errors.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


@linux_only
def test_make_realtime_changes_only_the_calling_thread_and_not_the_threads_it_starts():
    def promote_and_look():
        problem = make_realtime()
        mine = os.sched_getscheduler(0), os.sched_getparam(0).sched_priority
        child: list = []
        helper = threading.Thread(target=lambda: child.append(os.sched_getscheduler(0)))
        helper.start()
        helper.join()
        return problem, mine, child[0]

    before = os.sched_getscheduler(0)
    problem, (policy, priority), child_policy = _in_thread(promote_and_look)
    assert os.sched_getscheduler(0) == before == os.SCHED_OTHER  # the test's own thread untouched
    if problem is None:
        assert policy & ~os.SCHED_RESET_ON_FORK == os.SCHED_FIFO and priority == PRIORITY
        assert child_policy == os.SCHED_OTHER  # torch's pool, say, is not promoted with it
    else:
        assert "realtime" in problem and policy == os.SCHED_OTHER


@linux_only
def test_realtime_permitted_agrees_with_a_real_attempt_and_leaves_the_caller_alone():
    assert realtime_permitted() == _in_thread(make_realtime)
    assert os.sched_getscheduler(0) == os.SCHED_OTHER


def test_make_realtime_explains_itself_where_the_platform_has_no_sched_fifo(monkeypatch):
    monkeypatch.delattr(os, "SCHED_FIFO", raising=False)
    assert "not available" in make_realtime()


@linux_only
def test_a_user_without_an_rtprio_limit_is_told_why_and_keeps_normal_priority():
    import resource
    import shutil
    import subprocess

    command = [sys.executable, "-c", "import os; from vrae_live.live.realtime import make_realtime; "
               "print(make_realtime()); print(os.sched_getscheduler(0) == os.SCHED_OTHER)"]
    if os.geteuid() == 0:  # root may ignore the limit: drop the capability that lets it (util-linux)
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop CAP_SYS_NICE")
        command = ["setpriv", "--bounding-set", "-sys_nice", *command]
    def no_rtprio():
        return resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, preexec_fn=no_rtprio)
    assert result.returncode == 0, result.stderr
    message, normal = result.stdout.splitlines()
    assert "not permitted" in message and "audio" in message and normal == "True"
