"""mailq as Postfix/sendmail admins read it: a title line, size and arrival,
attempts and the next one, the last result per recipient, a total line in
Postfix's wording, an ordinary user's submission waiting in the maildrop, and
mailq -v: the queue's shape by destination domain and age (qshape's columns)."""
import os
import re

import pytest

from conftest import IS_ROOT

TITLE = ("-Queue ID-           --Size--  ------Arrival Time------  "
         "-Sender/Recipient-------")


def queue(sandbox, sender, *rcpts):
    r = sandbox.sendmail("-odq", "-f", sender, *rcpts,
                         message="Subject: waiting\n\nbody\n")
    assert r.returncode == 0, r.stderr


def test_listing_and_shape(sandbox):
    queue(sandbox, "alice@example.com", "x@example.org", "y@Example.ORG", "z@example.net")
    queue(sandbox, "bob@example.com", "w@example.org")
    r = sandbox.run("mailq")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    lines = out.splitlines()
    assert lines[0] == TITLE, out
    heads = [l for l in lines if re.match(r"^\w{6,} +\d+  \w{3} \w{3} [ \d]\d ", l)]
    assert len(heads) == 2, out
    assert heads[0].endswith("alice@example.com") and heads[1].endswith("bob@example.com")
    assert out.count("(0 attempts; next attempt at the next queue run)") == 2, out
    for rc in ("x@example.org", "y@example.org", "z@example.net", "w@example.org"):
        assert f"\n        {rc}\n" in out, out
    assert re.search(r"\n-- 1 Kbytes in 2 requests\.\n$", out), out
    assert "T 5 10 20" not in out  # the shape only with -v

    r = sandbox.run("mailq", "-v")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    shape = out.split("requests.\n\n", 1)[1].splitlines()
    assert shape[0].split() == ["T", "5", "10", "20", "40", "80", "160", "320", "640",
                                "1280", "1280+"], out
    rows = {l.split()[0]: [int(n) for n in l.split()[1:]] for l in shape[1:]}
    # just queued: everything in the first age column; one message counted once
    # per domain however many of its recipients are there
    assert rows == {"TOTAL": [2, 2] + [0] * 9, "example.org": [2, 2] + [0] * 9,
                    "example.net": [1, 1] + [0] * 9}, out
    assert [l.split()[0] for l in shape[1:]] == ["TOTAL", "example.org", "example.net"]


def test_deferred_message_shows_attempts_and_reason(sandbox):
    """A failed attempt (nothing listens on the relay's port): one attempt,
    a next attempt time, the reason on the recipient's line."""
    queue(sandbox, "alice@example.com", "x@example.org")
    sandbox.run("runq", "-o", "relay-host=[127.0.0.1]:9", "-o", "timeout=5")
    out = sandbox.mailq().stdout.decode()
    if "1 attempt;" not in out:
        pytest.skip("the relay attempt was not made here: " + out)
    assert re.search(r"\(1 attempt; next attempt \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\)", out), out
    assert re.search(r"\n        x@example\.org  \(4\.\d\.\d [^\n]+\)\n", out), out


@pytest.mark.skipif(not IS_ROOT, reason="needs root to submit as an ordinary user")
def test_maildrop_waiting_for_pickup(sandbox, accounts):
    u1, u2 = accounts["u1"], accounts["u2"]
    md = os.path.join(sandbox.queue, "maildrop")
    r = sandbox.run("sendmail", "-odq", u2, input="Subject: dropped\n\nbody\n", user=u1)
    assert r.returncode == 0, r.stderr
    waiting = [f for f in os.listdir(md) if f.startswith("qf")]
    if not waiting:
        pytest.skip("the front end picked the submission up at once")
    size = os.path.getsize(os.path.join(md, waiting[0]))
    out = sandbox.mailq().stdout.decode()
    assert re.search(rf"\n{waiting[0][2:]} +{size}  .* {u1}\n"
                     r"        \(waiting for pickup from the maildrop\)\n", out), out
    assert "-- 1 Kbytes in 1 request." in out, out
    out = sandbox.run("mailq", "-v").stdout.decode()
    assert re.search(r"\n *\(maildrop\) 1 1 ", out), out
    sandbox.runq()  # picked up and delivered
    assert "Mail queue is empty" in sandbox.mailq().stdout.decode()


@pytest.mark.skipif(not IS_ROOT, reason="needs root to run mailq as an ordinary user")
def test_ordinary_user_is_told_why(sandbox, accounts):
    r = sandbox.run("mailq", user=accounts["u1"])
    assert r.returncode == 77, r.stdout + r.stderr
    assert b"root or the queue owner" in r.stderr
