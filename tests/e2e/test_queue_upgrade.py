"""Upgrading from the original postoffice (postoffice-queue(5)): its queue
files, cm<id> (control) and dm<id> (text), are listed by mailq as waiting
for conversion (mailq changes nothing), converted by the next queue run into
queue files (one log line each: old id -> new qid, sender, recipient count)
and delivered; a malformed one is set aside, never deleted.  The fixtures
are written from the documented format (reference section 5): "S" comment,
"F" sender (absent for <>), "T<recipient>|<domain>", "!F"/"!H" flags, "++"
and the generated header block to the end of the file; dm holds the text as
received, headers included."""
import os
import re
import time

import pytest

from conftest import IS_ROOT
from smtpscript import ScriptServer

GEN = ("Received: from client.example (203.0.113.9)\n"
       "          by mx.test.example (TFMTKAYTFO)\n"
       "          (qid Q3fa2b1); Mon, 02 Mar 2026 10:00:00 UTC\n"
       "Message-ID: <02.03.2026.10.00.00.ABC123@mx.test.example>\n")


def write_original(queue, oid, sender, rcpts, text, gen=GEN, headers=True, comment="",
                   age=3600):
    cm = f"S{comment}\n"
    if sender:
        cm += f"F{sender}\n"
    for r in rcpts:
        cm += f"T{r}|{r.rpartition('@')[2]}\n"
    if headers:
        cm += "!F ;has from:\n!H ;has headers\n++ ;additional headers\n" + gen
    paths = []
    for name, content in ((f"dm{oid}", text), (f"cm{oid}", cm)):
        p = os.path.join(queue, name)
        with open(p, "w") as f:
            f.write(content)
        os.chmod(p, 0o600)  # the original's umask 077, files root's
        t = time.time() - age
        os.utime(p, (t, t))
        paths.append(p)
    return paths


def others(sandbox):
    return sorted(f for f in os.listdir(sandbox.queue)
                  if f not in ("maildrop", "trigger") and not f.startswith("qf"))


def test_original_message_is_listed_converted_logged_and_delivered(sandbox, accounts):
    u1, u2 = accounts["u1"], accounts["u2"]
    host = sandbox.hostname
    text = "From: alice@client.example\nSubject: left by the original\n\nold body\n"
    write_original(sandbox.queue, "ABC123", "alice@client.example",
                   [f"{u1}@{host}", f"{u2}@{host}"], text, comment="451 try later")
    before = others(sandbox)
    q = sandbox.mailq()
    out = q.stdout.decode()
    assert q.returncode == 0, q.stderr
    assert "ABC123" in out
    assert "original postoffice format, converted at next run" in out
    assert "alice@client.example" in out and f"{u2}@{host}" in out
    assert "1 request" in out
    assert others(sandbox) == before  # mailq modifies nothing
    r = sandbox.runq("-v")  # -v: the log on stderr too
    assert r.returncode == 0, r.stderr
    log = r.stderr.decode()
    m = re.search(r"original postoffice message ABC123 -> (\w+): "
                  r"from=<alice@client.example>, 2 recipients", log)
    assert m, log
    for u in (u1, u2):
        [msg] = sandbox.mbox(u)
        assert msg["Subject"] == "left by the original"
        assert msg["Message-ID"] == "<02.03.2026.10.00.00.ABC123@mx.test.example>"
        assert msg["Received"].startswith("from client.example (203.0.113.9)")
        assert msg.get_payload() == "old body\n"
        assert msg.get_from().startswith("alice@client.example ")
    assert others(sandbox) == []
    assert sandbox.queue_files() == []
    assert "Mail queue is empty" in sandbox.mailq().stdout.decode()


def test_original_null_sender_and_headerless_text(sandbox, accounts):
    """No F record: the null sender.  No !H/++ (the original's bug with a
    message without header lines, which it could never deliver): a blank line
    goes before the text."""
    u1 = accounts["u1"]
    write_original(sandbox.queue, "Zz9yX8", None, [f"{u1}@{sandbox.hostname}"],
                   "Key: value-looking body line\nmore\n", headers=False)
    r = sandbox.runq("-v")
    assert r.returncode == 0, r.stderr
    assert "Zz9yX8 -> " in r.stderr.decode() and "from=<>, 1 recipient:" in r.stderr.decode()
    [msg] = sandbox.mbox(u1)
    assert msg.get_payload() == "Key: value-looking body line\nmore\n"
    assert msg["Key"] is None


def test_original_remote_recipient_goes_out_over_smtp(sandbox):
    if not IS_ROOT:
        pytest.skip("relay-host is a root-only option; CI runs as root")
    srv = ScriptServer().start()
    try:
        sandbox.write_config(relay_host=f"[127.0.0.1]:{srv.port}")
        write_original(sandbox.queue, "Rem0te", "bob@client.example", ["far@remote.test"],
                       "Subject: far\r\n\r\nline\r\n")
        r = sandbox.runq()
        assert r.returncode == 0, r.stderr
        assert len(srv.messages) == 1
        assert any("RCPT TO:<far@remote.test>" in c for c in srv.commands), srv.commands
        assert b"Subject: far\r\n\r\nline\r\n" in srv.messages[0]  # CRLF kept once
        assert others(sandbox) == [] and sandbox.queue_files() == []
    finally:
        srv.stop()


@pytest.mark.parametrize("damage", ["unknown-record", "no-recipient", "no-data", "truncated"])
def test_malformed_original_is_set_aside(sandbox, accounts, damage):
    u1 = accounts["u1"]
    cm, dm = os.path.join(sandbox.queue, "cmBAD001"), os.path.join(sandbox.queue, "dmBAD001")
    write_original(sandbox.queue, "BAD001", "a@client.example",
                   [] if damage == "no-recipient" else [f"{u1}@{sandbox.hostname}"],
                   "Subject: bad\n\nx\n")
    original = open(cm).read()
    if damage == "unknown-record":
        original = original.replace("S\n", "S\nQwhat is this\n")
        open(cm, "w").write(original)
    elif damage == "no-data":
        os.unlink(dm)
    elif damage == "truncated":
        original = original.split("++")[0]
        open(cm, "w").write(original)
    out = sandbox.mailq().stdout.decode()
    assert "BAD001" in out and "unreadable" in out
    r = sandbox.runq("-v")
    assert r.returncode == 0, r.stderr
    log = r.stderr.decode()
    assert "original postoffice message BAD001: malformed control file cmBAD001" in log, log
    assert sandbox.mbox(u1) == []
    aside = os.path.join(sandbox.queue, "xfcmBAD001")
    assert open(aside).read() == original  # kept as it was
    expect = ["xfcmBAD001"] + ([] if damage == "no-data" else ["xfdmBAD001"])
    assert others(sandbox) == expect
    out = sandbox.mailq().stdout.decode()
    assert "set aside: corrupt queue file xfcmBAD001, see postoffice-queue(5)" in out
    # set aside for good: later runs leave it alone
    sandbox.runq()
    assert others(sandbox) == expect
