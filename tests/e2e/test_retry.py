"""Back-off, delay notices (qwarn=) and expiry (qreturn=)."""
import email
import email.policy
import time

import pytest


def reports(sandbox, user):
    out = []
    for m in sandbox.mbox(user):
        b = email.message_from_bytes(m.as_bytes(), policy=email.policy.default)
        if b.get_content_type() == "multipart/report":
            ds = [p for p in b.iter_parts() if p.get_content_type() == "message/delivery-status"]
            out.append((b["Subject"], ds[0].as_string() if ds else ""))
    return out


def test_deferred_then_expired_bounce(sandbox, accounts):
    u = accounts["u1"]
    sandbox.set_aliases("tf: \"|exit 75\"\npostmaster: %s\n" % u)
    sandbox.write_config(qreturn="2s", qwarn=0)
    r = sandbox.sendmail("-i", "-f", f"{u}@{sandbox.hostname}", "tf", message="Subject: x\n\nx\n")
    assert r.returncode == 0
    time.sleep(0.5)
    out = sandbox.mailq().stdout.decode()
    assert "tf" in out or "exit 75" in out or "1 request" in out, out
    assert reports(sandbox, u) == []
    time.sleep(2.2)
    sandbox.runq()
    rep = reports(sandbox, u)
    assert len(rep) == 1, rep
    assert "Action: failed" in rep[0][1]
    assert "4.4.7" in rep[0][1] or "gave up" in rep[0][1]
    assert sandbox.wait_queue_empty()


def test_delay_notice_sent_once(sandbox, accounts):
    u = accounts["u1"]
    sandbox.set_aliases("tf: \"|exit 75\"\npostmaster: %s\n" % u)
    sandbox.write_config(qwarn="1s", qreturn="1d")
    sandbox.sendmail("-i", "-odq", "-f", f"{u}@{sandbox.hostname}", "tf",
                     message="Subject: x\n\nx\n")
    time.sleep(1.2)
    sandbox.runq()
    sandbox.runq()
    rep = reports(sandbox, u)
    assert len(rep) == 1, rep
    assert "Action: delayed" in rep[0][1]
    # still queued, to be retried
    assert sandbox.queue_files()


def test_backoff_recorded_and_runq_by_hand_ignores_it(sandbox, accounts):
    u = accounts["u1"]
    flag = sandbox.dir + "/second"
    sandbox.set_aliases(f"tf: \"|test -e {flag} || {{ touch {flag}; exit 75; }}\"\n")
    import os
    os.chmod(sandbox.dir, 0o777)
    sandbox.sendmail("-i", "-odq", "tf", message="Subject: x\n\nx\n")
    sandbox.runq()           # first attempt: deferred, next try in retry-min
    queued = list(sandbox.queued().values())
    assert queued
    lines = queued[0][1].splitlines()
    # the back-off is an appended retry record "B<attempts> <next>\t<sum>"
    # (postoffice-queue(5)), not a rewrite: A0 N0 stay as enqueued
    assert [l for l in lines if l.startswith("A")] == ["A0"], lines
    retry = [l.split("\t")[0][1:].split() for l in lines if l.startswith("B")]
    assert len(retry) == 1, lines
    attempts, nexttry = int(retry[0][0]), int(retry[0][1])
    assert attempts == 1, lines
    assert nexttry >= time.time() + 200  # retry-min= 5m by default
    sandbox.runq()           # by hand: tried now despite the back-off
    assert sandbox.wait_queue_empty()
