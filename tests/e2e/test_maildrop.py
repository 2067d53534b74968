"""The maildrop pickup: what an ordinary user's sendmail leaves in QUEUEDIR/maildrop,
and files crafted there by hand (any local user can write one), taken into the queue
by the next queue run.  Nothing a user dropped there may vanish without a bounce."""
import email
import email.policy
import os
import pwd

import pytest

from conftest import IS_ROOT, QF_HDR_LEN

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="needs root to act as an ordinary user")

FNV_OFFSET = 0xcbf29ce484222325
FNV_PRIME = 0x100000001b3
MASK = (1 << 64) - 1


def fnv1a64(data, h=FNV_OFFSET):
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & MASK
    return h


def fnv1a64_zeros(n, h):
    """FNV-1a over n zero bytes: each one only multiplies."""
    return (h * pow(FNV_PRIME, n, 1 << 64)) & MASK


def drop_file(sandbox, user, data, ctl, claim=None):
    """Write a maildrop submission as user would (postoffice-queue(5)): data,
    then control records ctl (text without the end line).  claim: a larger
    data length to claim, the rest of the data a hole of zeros (sparse)."""
    n = claim if claim is not None else len(data)
    header = b"POQ1 %016x\n" % n
    assert len(header) == QF_HDR_LEN
    h = fnv1a64(data)
    h = fnv1a64_zeros(n - len(data), h)
    h = fnv1a64(ctl.encode(), h)
    h = fnv1a64(header, h)
    md = os.path.join(sandbox.queue, "maildrop")
    path = os.path.join(md, "qf" + qid_of(ctl))
    with open(path, "wb") as f:
        f.write(header + data)
        f.seek(QF_HDR_LEN + n)
        f.write(ctl.encode() + b". %016x\n" % h)
    pw = pwd.getpwnam(user)
    os.chown(path, pw.pw_uid, os.stat(md).st_gid)
    os.chmod(path, 0o640)
    return path


def qid_of(ctl):
    return [line[1:] for line in ctl.splitlines() if line.startswith("Q")][0]


def ctl_for(user, rcpts, qid="1xaZZZ0000Test"):
    lines = ["V1", "Q" + qid, "T1796625555", "N0", "A0", "G0", f"F{user}", "Clocalhost", f"L{user}"]
    lines += [f"R{i} P 0 {r}" for i, r in enumerate(rcpts)]
    return "\n".join(lines) + "\n"


MSG = b"Subject: dropped by hand\nFrom: someone\n\nthe body\n"


def dsn(msg):
    b = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert b.get_content_type() == "multipart/report", b.get_content_type()
    parts = {p.get_content_type(): p for p in b.iter_parts()}
    return parts


@pytest.mark.parametrize("bad", ["/x@mx.test.example", "|x@example.org", "|touch /tmp/x",
                                 "/tmp/a", "bad address@@x"])
def test_bad_recipient_is_bounced_good_one_delivered(sandbox, accounts, bad):
    u1, u2 = accounts["u1"], accounts["u2"]
    drop_file(sandbox, u1, MSG, ctl_for(u1, [u2, bad]))
    r = sandbox.runq()
    assert r.returncode == 0, r.stderr
    got = sandbox.wait_for_mail(u2)
    assert len(got) == 1 and got[0]["Subject"] == "dropped by hand"
    bounces = sandbox.wait_for_mail(u1)
    assert len(bounces) == 1
    parts = dsn(bounces[0])
    status = parts["message/delivery-status"].as_string()
    assert "Action: failed" in status and "5.1.3" in status, status
    assert "not an address" in status, status
    assert sandbox.wait_queue_empty()
    assert os.listdir(os.path.join(sandbox.queue, "maildrop")) == []


def test_only_bad_recipients_bounce_the_message(sandbox, accounts):
    u1 = accounts["u1"]
    drop_file(sandbox, u1, MSG, ctl_for(u1, ["|cat > /tmp/po-owned", "/tmp/po-owned"]))
    sandbox.runq()
    bounces = sandbox.wait_for_mail(u1)
    assert len(bounces) == 1
    status = dsn(bounces[0])["message/delivery-status"].as_string()
    assert status.count("Action: failed") == 2, status
    assert not os.path.exists("/tmp/po-owned")
    assert sandbox.wait_queue_empty()


def test_sparse_file_claiming_2gb_is_bounced_not_copied(sandbox, accounts):
    u1, u2 = accounts["u1"], accounts["u2"]
    sandbox.write_config(size="1m")
    path = drop_file(sandbox, u1, MSG, ctl_for(u1, [u2]), claim=2 * 1024 ** 3)
    assert os.stat(path).st_blocks * 512 < 1024 * 1024  # sparse indeed
    r = sandbox.runq()
    assert r.returncode == 0, r.stderr
    bounces = sandbox.wait_for_mail(u1)
    assert len(bounces) == 1
    parts = dsn(bounces[0])
    status = parts["message/delivery-status"].as_string()
    assert "5.3.4" in status and "limit 1000000 bytes" in status, status
    # only the headers come back
    assert "text/rfc822-headers" in parts, list(parts)
    assert "dropped by hand" in parts["text/rfc822-headers"].as_string()
    assert sandbox.mbox(u2) == []
    assert sandbox.wait_queue_empty()
    assert not os.path.exists(path)
    # nothing of that size ever reached the queue or a mailbox
    for d, _, fs in os.walk(sandbox.dir):
        for f in fs:
            p = os.path.join(d, f)
            if not os.path.islink(p):
                assert os.stat(p).st_size < 1024 * 1024, p


def test_under_size_limit_is_delivered(sandbox, accounts):
    u1, u2 = accounts["u1"], accounts["u2"]
    sandbox.write_config(size="1m")
    drop_file(sandbox, u1, MSG, ctl_for(u1, [u2]))
    sandbox.runq()
    got = sandbox.wait_for_mail(u2)
    assert len(got) == 1 and got[0].get_payload() == "the body\n"
    assert got[0]["Return-Path"] == f"<{u1}@{sandbox.hostname}>"


def test_minfree_leaves_the_maildrop_waiting(sandbox, accounts):
    u1, u2 = accounts["u1"], accounts["u2"]
    path = drop_file(sandbox, u1, MSG, ctl_for(u1, [u2]))
    sandbox.write_config(minfree="1000000g")
    r = sandbox.runq("-v")
    assert b"minfree" in r.stderr
    assert os.path.exists(path) and sandbox.mbox(u2) == []
    sandbox.write_config(minfree="0")
    sandbox.runq()
    assert len(sandbox.wait_for_mail(u2)) == 1
    assert not os.path.exists(path)
