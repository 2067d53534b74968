"""Spool guarantees: concurrent runners, a full disk, and SIGKILL at random points."""
import os
import random
import signal
import subprocess
import time

import pytest

from conftest import IS_ROOT, read_qf

MBOX_BATCH = 8  # src/deliver/queue_run.c MBOX_BATCH_MAX
FILLER = "".join(f"line {n} of the body, long enough to span a few writes\n" for n in range(60))


def body(token):
    return f"Subject: {token}\n\nBEGIN {token}\n{FILLER}END {token}\n"


def tokens_in(sandbox, user):
    """token -> number of complete copies; raises on a partial message."""
    seen = {}
    for m in sandbox.mbox(user):
        tok = m["Subject"]
        payload = m.get_payload()
        assert payload.startswith(f"BEGIN {tok}\n"), f"partial message {tok!r}"
        assert payload.rstrip("\n").endswith(f"END {tok}"), f"partial message {tok!r}"
        seen[tok] = seen.get(tok, 0) + 1
    return seen


def leftovers(sandbox):
    return [f for f in os.listdir(sandbox.queue) if f not in ("maildrop", "trigger")]


def test_two_runners_never_deliver_twice(sandbox, accounts):
    u = accounts["u1"]
    n = 40
    for i in range(n):
        r = sandbox.sendmail("-odq", "-i", u, message=body(f"tok{i}"))
        assert r.returncode == 0, r.stderr
    procs = [subprocess.Popen(sandbox.cmd("runq"), stderr=subprocess.PIPE) for _ in range(2)]
    for p in procs:
        p.wait(timeout=120)
    seen = tokens_in(sandbox, u)
    assert sorted(seen) == sorted(f"tok{i}" for i in range(n))
    assert all(v == 1 for v in seen.values()), seen
    assert leftovers(sandbox) == []


def test_crash_trials(sandbox, accounts):
    """200+ SIGKILLs: of enqueuing sendmail processes and of queue runs (with
    their delivery children).  Every accepted message is delivered, nothing
    partial, nothing left after the next run, and each crash causes at most
    MBOX_BATCH duplicates (a mailbox gets up to that many messages under one
    lock and one fsync, and their results are recorded after the fsync, so a
    killed run can repeat at most the batch whose results it had not yet
    recorded; one delivery process here)."""
    u = accounts["u1"]
    sandbox.write_config(delivery_processes=1)
    rnd = random.Random(4242)
    accepted = set()
    trials = int(os.environ.get("PO_CRASH_TRIALS", "120"))
    for i in range(trials):
        tok = f"s{i}"
        p = subprocess.Popen(sandbox.cmd("sendmail", "-odq", "-i", u),
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            p.stdin.write(body(tok).encode())
            p.stdin.close()
        except BrokenPipeError:
            pass
        time.sleep(rnd.uniform(0, 0.004))
        p.send_signal(signal.SIGKILL)
        if p.wait() == 0:
            accepted.add(tok)
    # a batch of queued messages, then queue runs killed at random points
    for i in range(40):
        tok = f"q{i}"
        r = sandbox.sendmail("-odq", "-i", u, message=body(tok))
        assert r.returncode == 0
        accepted.add(tok)
    for i in range(trials):
        p = subprocess.Popen(sandbox.cmd("runq"), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rnd.uniform(0, 0.02))
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
    time.sleep(0.2)
    for _ in range(2):
        r = sandbox.runq()
        assert r.returncode == 0, r.stderr
    seen = tokens_in(sandbox, u)
    missing = accepted - set(seen)
    assert not missing, f"accepted but never delivered: {sorted(missing)[:10]}"
    extra = sum(c - 1 for c in seen.values())
    assert extra <= trials * MBOX_BATCH, f"{extra} duplicates from {trials} crashed runs"
    assert leftovers(sandbox) == [], leftovers(sandbox)


def test_full_disk(sandbox, accounts):
    if not IS_ROOT:
        pytest.skip("needs root to mount a small tmpfs for the queue")
    u = accounts["u1"]
    os.makedirs(sandbox.queue, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=192k,mode=0700", "tmpfs",
                        sandbox.queue], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount tmpfs: %s" % r.stderr.decode().strip())
    try:
        sandbox.write_config(minfree=0)
        big = "Subject: big\n\n" + ("x" * 70 + "\n") * 800   # ~57 KB
        codes = []
        for _ in range(8):
            r = sandbox.sendmail("-odq", "-i", u, message=big)
            codes.append(r.returncode)
            if r.returncode != 0:
                assert r.returncode == 75, r.stderr
                assert b"full" in r.stderr
        assert 75 in codes, codes
        # nothing half-written: only complete queue files, each readable
        names = leftovers(sandbox)
        assert all(n.startswith("qf") for n in names), names
        for n in names:
            data, ctl = read_qf(os.path.join(sandbox.queue, n))
            assert b"Subject: big" in data and "\n. " in ctl, n
        ok = codes.count(0)
        sandbox.runq()
        assert len(sandbox.mbox(u)) == ok
    finally:
        subprocess.run(["umount", sandbox.queue])
