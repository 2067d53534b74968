"""The SMTP dialogue (RFC 5321) against the daemon: every command, every reply
with an enhanced status code, sequence errors, PIPELINING, real clients."""
import os
import re
import smtplib
import subprocess

import pytest

from smtpclient import Raw, has_code, bs


@pytest.fixture(autouse=True)
def _no_load_limit(sandbox):
    """The shared test machine is often loaded: load= would refuse us."""
    sandbox.write_config(load=0)


@pytest.fixture
def daemon(sandbox):
    sandbox.start_daemon()
    return sandbox


def rcpt(sb):
    return "%s@%s" % (sb.acc["u1"], sb.hostname)


def test_ehlo_keywords(daemon):
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=20) as s:
        code, msg = s.ehlo("client.example")
        assert code == 250
        assert msg.split(b"\n")[0].startswith(daemon.hostname.encode())
        for kw in ("size", "8bitmime", "pipelining", "enhancedstatuscodes", "smtputf8"):
            assert s.has_extn(kw), kw
        # no joke texts, no upper-casing of our own name
        assert b"Sailor" not in msg


def test_greeting_names_us(daemon):
    c = Raw(daemon.port)
    code, lines = c.reply()
    assert code == 220
    assert lines[-1].split()[0] == daemon.hostname.encode() or \
        lines[0].split()[0] == daemon.hostname.encode()
    c.close()


def test_every_reply_has_enhanced_code(daemon):
    c = Raw(daemon.port)
    c.reply()
    # the HELO/EHLO reply starts with our domain (RFC 5321 4.1.1.1), no code
    code, lines = c.cmd("HELO client.example")
    assert code == 250 and lines[0].startswith(daemon.hostname.encode())
    for line in ["NOOP", "RSET", "VRFY root", "EXPN staff",
                 "HELP", "FOO", "RCPT TO:<x@y>", "DATA", "MAIL FROM:<a@x.example>",
                 "MAIL FROM:<a@x.example>", "RSET", "DEBUG", "QUIT"]:
        code, lines = c.cmd(line)
        assert code is not None, line
        assert has_code(lines, code), (line, lines)
    c.close()


def test_small_commands(daemon):
    c = Raw(daemon.port)
    c.reply()
    assert c.cmd("EHLO client.example")[0] == 250
    assert c.cmd("NOOP")[0] == 250
    assert c.cmd("RSET")[0] == 250
    code, lines = c.cmd("VRFY root")
    assert code == 252 and lines[0].startswith(b"2.5.2")
    assert c.cmd("EXPN staff")[0] == 502
    code, lines = c.cmd("HELP")
    assert code == 214 and len(lines) >= 2
    code, lines = c.cmd("DEBUG")
    assert code == 502  # debug is off
    code, lines = c.cmd("HELOX foo")  # the whole verb counts, not 4 letters
    assert code == 500 and lines[0].startswith(b"5.5.2")
    assert c.cmd("QUIT")[0] == 221
    assert c.closed()
    c.close()


def test_sequence_errors(daemon):
    c = Raw(daemon.port)
    c.reply()
    code, lines = c.cmd("MAIL FROM:<a@x.example>")
    assert code == 503 and lines[0].startswith(b"5.5.1")  # no HELO yet
    c.cmd("EHLO client.example")
    code, lines = c.cmd("RCPT TO:<%s>" % rcpt(daemon))
    assert code == 503 and lines[0].startswith(b"5.5.1")
    code, lines = c.cmd("DATA")
    assert code == 503 and lines[0].startswith(b"5.5.1")
    assert c.cmd("MAIL FROM:<a@x.example>")[0] == 250
    code, lines = c.cmd("MAIL FROM:<b@x.example>")
    assert code == 503 and lines[0].startswith(b"5.5.1")
    code, lines = c.cmd("DATA")  # no recipient yet
    assert code == 554
    assert c.cmd("RSET")[0] == 250
    assert c.cmd("MAIL FROM:<b@x.example>")[0] == 250
    code, lines = c.cmd("MAIL FROM <b@x.example>")
    assert code == 503
    c.cmd("RSET")
    code, lines = c.cmd("MAIL FROM <b@x.example>")
    assert code == 501 and lines[0].startswith(b"5.5.2")
    code, lines = c.cmd("MAIL FROM:<b@x.example> FOO=BAR")
    assert code == 555 and lines[0].startswith(b"5.5.4")
    c.close()


def test_message_accepted_with_queue_id(daemon):
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=20) as s:
        s.ehlo("client.example")
        s.mail("sender@x.example")
        s.rcpt(rcpt(daemon))
        code, msg = s.data(b"Subject: t1\r\n\r\nhello\r\n")
        assert code == 250
        assert re.match(rb"2\.0\.0 .*queue id [0-9A-Za-z]+$", msg), msg


def test_delivered_with_received_header(daemon):
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=20) as s:
        s.ehlo("client.example")
        s.sendmail("sender@x.example", [rcpt(daemon)],
                   b"Subject: delivered\r\n\r\nline one\r\n.leading dot\r\n..two dots\r\n")
    msgs = daemon.wait_for_mail(daemon.acc["u1"])
    assert len(msgs) == 1
    m = msgs[0]
    rec = m.get_all("Received")[0]
    assert "from client.example" in rec and "[127.0.0.1]" in rec
    assert "by %s" % daemon.hostname in rec and "with ESMTP id" in rec
    assert "for <%s>" % rcpt(daemon) in rec
    body = m.get_payload()
    assert body == "line one\n.leading dot\n..two dots\n"
    # a relay adds no Date:/Message-ID: (RFC 5321 6.4 leaves that to the MSA)
    assert m["Message-ID"] is None


def test_null_sender_accepted(daemon):
    c = Raw(daemon.port)
    c.reply()
    c.cmd("EHLO client.example")
    assert c.cmd("MAIL FROM:<>")[0] == 250
    assert c.cmd("RCPT TO:<%s>" % rcpt(daemon))[0] == 250
    c.close()


def test_nodaemon_refuses_null_sender(sandbox):
    sandbox.write_config(nodaemon=True)
    sandbox.start_daemon()
    c = Raw(sandbox.port)
    c.reply()
    c.cmd("EHLO client.example")
    code, lines = c.cmd("MAIL FROM:<>")
    assert code == 550 and lines[0].startswith(b"5.7.1")
    c.close()


def test_pipelining_group(daemon):
    """A whole pipelined transaction in one write; replies in order."""
    c = Raw(daemon.port)
    c.reply()
    c.cmd("EHLO client.example")
    c.send("MAIL FROM:<a@x.example>\r\nRCPT TO:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
           % (rcpt(daemon), rcpt(daemon)))
    assert [c.reply()[0] for _ in range(4)] == [250, 250, 250, 354]
    c.send("Subject: p\r\n\r\nbody\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n")
    assert [c.reply()[0] for _ in range(4)] == [250, 250, 250, 221]
    c.close()


def test_swaks_plain_and_pipeline(daemon):
    for extra in ([], ["--pipeline"]):
        r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % daemon.port,
                            "--from", "sender@x.example", "--to", rcpt(daemon),
                            "--helo", "client.example", *extra],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
        assert b"250 2.0.0 message accepted" in r.stdout


def test_debug_command(sandbox):
    sandbox.write_config(debug=True)
    sandbox.start_daemon()
    c = Raw(sandbox.port)
    c.reply()
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<a@x.example>")
    c.cmd("RCPT TO:<%s>" % rcpt(sandbox))
    code, lines = c.cmd("DEBUG")
    assert code == 250
    text = b"\n".join(lines)
    assert b"hostname=" + sandbox.hostname.encode() in text
    assert b"from <a@x.example>" in text
    assert has_code(lines, code)
    c.close()


@pytest.mark.parametrize("peer,trusted,shown", [
    ("203.0.113.5", None, False),           # a stranger
    ("203.0.113.5", "203.0.113.0/24", True),  # trusted=
    ("198.51.100.7", "203.0.113.0/24", False),
    ("127.0.0.1", None, True),              # loopback
    (None, None, True),                     # plain -bs: the local user
])
def test_debug_only_for_trusted_clients(sandbox, peer, trusted, shown):
    """DEBUG lists the whole configuration: strangers get the 502 of a
    server without DEBUG, and HELP does not offer it to them."""
    sandbox.write_config(debug=True, trusted=trusted, verify_from=0)
    sandbox.start_daemon()
    script = b"EHLO client.example\r\nHELP\r\nDEBUG\r\nQUIT\r\n"
    replies = bs(sandbox, script, *(("-R", peer) if peer else ()))
    assert [r[0] for r in replies] == [220, 250, 214, 250 if shown else 502, 221], replies
    code, lines = replies[3]
    text = b"\n".join(lines)
    assert (b"hostname=" + sandbox.hostname.encode() in text) == shown, lines
    assert (b"queuedir=" in text) == shown
    assert (b" DEBUG" in b"\n".join(replies[2][1])) == shown
    if not shown:
        assert lines[0].startswith(b"5.5.1")


def test_banner_joins_greeting(sandbox):
    with open(os.path.join(sandbox.dir, "issue.smtp"), "w") as f:
        f.write("Authorised use only.\nSecond line\n")
    sandbox.start_daemon()
    c = Raw(sandbox.port)
    code, lines = c.reply()
    assert code == 220
    assert b"Authorised use only." in lines and b"Second line" in lines
    c.close()


def test_bs_session(sandbox):
    sandbox.start_daemon()  # sets up the queue directory; -bs then wakes it
    script = ("EHLO local\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<%s>\r\nDATA\r\n"
              "Subject: bs\r\n\r\nhi\r\n.\r\nQUIT\r\n" % rcpt(sandbox)).encode()
    replies = bs(sandbox, script)
    assert [r[0] for r in replies] == [220, 250, 250, 250, 354, 250, 221]


def test_audit_records(sandbox):
    p = sandbox.start_daemon("-a")
    c = Raw(sandbox.port)
    c.reply()
    c.cmd("EHLO client.example")
    c.cmd("NOOP")
    c.cmd("QUIT")
    c.closed()
    c.close()
    p.terminate()
    err = p.stderr.read().decode(errors="replace")
    assert re.search(r"AUDIT: *\d+: *127\.0\.0\.1:EHLO:250:", err), err
    assert re.search(r"AUDIT: *\d+: *127\.0\.0\.1:NOOP:250:", err), err
    assert re.search(r"AUDIT: *\d+: *127\.0\.0\.1:QUIT:221:", err), err


def test_smtputf8(daemon):
    c = Raw(daemon.port)
    c.reply()
    c.cmd("EHLO client.example")
    code, lines = c.cmd("MAIL FROM:<用户@example.com>".encode())
    assert code == 553 and lines[0].startswith(b"5.6.7")
    assert c.cmd("MAIL FROM:<用户@example.com> SMTPUTF8".encode())[0] == 250
    assert c.cmd("RCPT TO:<%s>" % rcpt(daemon))[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: ünïcode\r\n\r\nbody ✓\r\n.\r\n".encode())
    code, lines = c.reply()
    assert code == 250
    c.close()
    # python's mailbox cannot read a UTF-8 From_ line: look at the bytes
    import time
    path = daemon.mbox_path(daemon.acc["u1"])
    deadline = time.time() + 20
    while time.time() < deadline and not (os.path.exists(path) and
                                          b"UTF8SMTP" in open(path, "rb").read()):
        time.sleep(0.05)
    data = open(path, "rb").read()
    assert b"with UTF8SMTP" in data and "body ✓".encode() in data


def test_bs_by_ordinary_user_goes_through_maildrop(sandbox):
    if os.geteuid() != 0:
        pytest.skip("needs root to run -bs as another user")
    sandbox.start_daemon("-q1h")
    script = ("EHLO local\r\nMAIL FROM:<whoever@x.example>\r\nRCPT TO:<%s>\r\nDATA\r\n"
              "Subject: from a user\r\n\r\nhi\r\n.\r\nQUIT\r\n" % rcpt(sandbox)).encode()
    r = sandbox.run("postoffice", "-bs", input=script, user=sandbox.acc["u2"])
    assert b"250 2.0.0" in r.stdout, r.stdout + r.stderr
    msgs = sandbox.wait_for_mail(sandbox.acc["u1"])
    assert [str(m["Subject"]) for m in msgs] == ["from a user"]
    assert "(user %s)" % sandbox.acc["u2"] in msgs[0].get_all("Received")[0]


def test_utf8_alias_reached_with_smtputf8(sandbox):
    """newaliases takes a UTF-8 alias name (invalid UTF-8 is reported with
    that reason), and SMTPUTF8 mail reaches it."""
    with open(sandbox.aliases, "wb") as f:
        f.write("postmaster: %s\njösé: %s\n".encode() % (sandbox.acc["u1"].encode(),
                                                          sandbox.acc["u2"].encode())
                + b"bad\xff: root\n")
    r = sandbox.run("newaliases")
    assert r.returncode == 0, r.stderr
    err = r.stderr.decode(errors="replace")
    assert ":3: alias name 'bad\\xFF' is not valid UTF-8" in err, err
    assert ":2:" not in err, err
    sandbox.start_daemon()
    c = Raw(sandbox.port)
    c.reply()
    c.cmd("EHLO client.example")
    assert c.cmd("MAIL FROM:<a@[203.0.113.1]> SMTPUTF8")[0] == 250
    assert c.cmd("RCPT TO:<jösé@%s>" % sandbox.hostname)[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: utf8 alias\r\n\r\nhi\r\n.\r\n")
    assert c.reply()[0] == 250
    c.close()
    msgs = sandbox.wait_for_mail(sandbox.acc["u2"])
    assert msgs and msgs[0]["Subject"] == "utf8 alias"
