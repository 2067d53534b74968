"""forbidden= (blacklist=) for clients tcp wrappers deny (hosts-deny=, libwrap):
each action through the same verdict module as spam= and dnsbl=.  Remote
clients are played with -bs -R ADDR."""
import mailbox
import os
import time

import pytest

from smtpclient import bs

DENIED = "203.0.113.9"


@pytest.fixture
def sb(sandbox):
    allow = os.path.join(sandbox.dir, "hosts.allow")
    deny = os.path.join(sandbox.dir, "hosts.deny")
    open(allow, "w").write("")
    open(deny, "w").write("smtp: %s\n" % DENIED)
    sandbox.write_config(hosts_allow=allow, hosts_deny=deny, load=0, verify_from=0)
    return sandbox


def mail(sb, peer):
    u = "%s@%s" % (sb.acc["u1"], sb.hostname)
    lines = ["EHLO c.example", "MAIL FROM:<a@c.example>", "RCPT TO:<%s>" % u, "DATA",
             "Subject: wrapped\r\n\r\nbody\r\n.", "QUIT"]
    return bs(sb, ("\r\n".join(lines) + "\r\n").encode(), "-R", peer)


def test_bounce(sb):
    r = mail(sb, DENIED)
    assert r[0][0] == 554 and b"does not accept mail from %s" % DENIED.encode() in r[0][1][0]
    assert r[1][0] == 503 and r[2][0] == 503 and r[-1][0] == 221, r
    sb.write_config(forbidden="bounce:We get too much spam from your domain")
    r = mail(sb, DENIED)
    assert r[0][0] == 554 and b"too much spam" in r[0][1][0]
    assert mail(sb, "203.0.113.8")[0][0] == 220  # not denied


def test_accept(sb):
    sb.write_config(blacklist="accept")  # the old name
    r = mail(sb, DENIED)
    assert r[0][0] == 220 and r[5][0] == 250, r
    sb.runq()
    msgs = sb.wait_for_mail(sb.acc["u1"])
    assert "does not accept mail from %s" % DENIED in msgs[0]["X-Spam"]


def test_folder(sb):
    sb.write_config(forbidden="folder:denied")
    assert mail(sb, DENIED)[5][0] == 250
    assert mail(sb, "203.0.113.8")[5][0] == 250  # not denied: the mailbox
    sb.runq()
    path = os.path.join(sb.spool, sb.acc["u1"] + ":denied")
    deadline = time.time() + 10
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.05)
    msgs = list(mailbox.mbox(path, create=False))
    assert len(msgs) == 1 and msgs[0]["X-Spam"]
    inbox = sb.wait_for_mail(sb.acc["u1"])
    assert len(inbox) == 1 and inbox[0]["X-Spam"] is None
