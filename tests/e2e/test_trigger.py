"""The trigger FIFO (QUEUEDIR/trigger, mode 0622: every user may write it)
wakes the daemon's queue runner.  A flood of writes must cost the daemon
O(queue runs), not O(writes): it drains the FIFO with large reads, stops
reading it while a run is already wanted, and starts at most one run per
second on triggers.  Measured: before, 4.9 M one-byte writes in 5 s cost the
master 2.95 CPU-seconds; after, the FIFO fills, writers get EAGAIN, and the
master and its runs use less than a clock tick."""
import os
import threading
import time

import pytest

from conftest import IS_ROOT


def cpu_seconds(pid):
    """utime+stime of pid and of its reaped children (the queue runs)."""
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in f[11:15]) / os.sysconf("SC_CLK_TCK")


def flood(path, seconds, counts):
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    end = time.time() + seconds
    while time.time() < end:
        try:
            os.write(fd, b"q")
            counts[0] += 1
        except BlockingIOError:
            counts[1] += 1
    os.close(fd)


def test_trigger_flood_costs_the_daemon_little_and_still_wakes_it(sandbox, accounts):
    if not IS_ROOT:
        pytest.skip("a user's maildrop submission needs a second account (CI runs as root)")
    u1, u2 = accounts["u1"], accounts["u2"]
    p = sandbox.start_daemon()  # no -q: only triggers start queue runs
    time.sleep(0.3)
    before = cpu_seconds(p.pid)
    counts = [0, 0]
    t = threading.Thread(target=flood, args=(os.path.join(sandbox.queue, "trigger"), 3, counts))
    t.start()
    time.sleep(0.5)
    # a local user's submission goes to the maildrop and wakes the daemon
    r = sandbox.sendmail("-i", u2, message="Subject: during the flood\n\nx\n", user=u1)
    assert r.returncode == 0, r.stderr
    msgs = sandbox.wait_for_mail(u2, 1, timeout=10)
    t.join()
    used = cpu_seconds(p.pid) - before
    assert [m["Subject"] for m in msgs] == ["during the flood"]
    assert counts[1] > 0, counts  # the FIFO filled up: nobody read it byte by byte
    assert used < 1.0, (used, counts)
