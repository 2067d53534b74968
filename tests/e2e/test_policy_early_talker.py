"""early-talker= and greet-pause=: a client that talks before the greeting,
or sends commands ahead before EHLO announced PIPELINING, is refused with
554 5.5.0; well-behaved clients we did not write (smtplib, swaks) pass."""
import shutil
import smtplib
import socket
import subprocess
import time

import pytest

from smtpclient import Raw


@pytest.fixture
def sb(sandbox):
    sandbox.write_config(load=0, greet_pause=1)
    return sandbox


def raw_connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    return s, s.makefile("rb")


def read_reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            return None, lines
        lines.append(line)
        if line[3:4] == b" ":
            return int(line[:3]), lines


def rcpt(sb):
    return "%s@%s" % (sb.acc["u1"], sb.hostname)


def test_talk_before_greeting_refused(sb):
    sb.start_daemon()
    s, f = raw_connect(sb.port)
    s.sendall(b"EHLO spammer.example\r\n")
    code, lines = read_reply(f)
    assert code == 554 and lines[0].startswith(b"554 5.5.0"), lines
    assert b"before the greeting" in lines[0]
    assert f.readline() == b""  # closed
    s.close()


def test_pipelining_after_helo_refused(sb):
    sb.start_daemon()
    s, f = raw_connect(sb.port)
    assert read_reply(f)[0] == 220
    s.sendall(b"HELO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<%s>\r\n"
              % rcpt(sb).encode())
    code, lines = read_reply(f)
    assert code == 554 and lines[0].startswith(b"554 5.5.0") and b"PIPELINING" in lines[0]
    assert f.readline() == b""
    s.close()


def test_commands_before_ehlo_reply_refused(sb):
    sb.start_daemon()
    s, f = raw_connect(sb.port)
    assert read_reply(f)[0] == 220
    s.sendall(b"EHLO c.example\r\nMAIL FROM:<a@c.example>\r\n")
    code, lines = read_reply(f)
    assert code == 554 and lines[0].startswith(b"554 5.5.0")
    s.close()


def test_pipelining_after_ehlo_allowed(sb):
    sb.start_daemon()
    c = Raw(sb.port)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO c.example")[0] == 250
    c.send("MAIL FROM:<a@c.example>\r\nRCPT TO:<%s>\r\nDATA\r\n" % rcpt(sb))
    assert [c.reply()[0] for _ in range(3)] == [250, 250, 354]
    c.send("Subject: piped\r\n\r\nok\r\n.\r\nQUIT\r\n")
    assert c.reply()[0] == 250 and c.reply()[0] == 221
    c.close()
    assert sb.wait_for_mail(sb.acc["u1"])


def test_option_off_accepts_them(sb):
    sb.write_config(early_talker=0)
    sb.start_daemon()
    s, f = raw_connect(sb.port)
    s.sendall(b"HELO c.example\r\nMAIL FROM:<a@c.example>\r\n")
    assert read_reply(f)[0] == 220
    assert read_reply(f)[0] == 250 and read_reply(f)[0] == 250
    s.close()


def test_trusted_client_exempt(sb):
    sb.write_config(trusted="[127.0.0.1]")
    sb.start_daemon()
    s, f = raw_connect(sb.port)
    s.sendall(b"HELO c.example\r\nNOOP\r\n")
    assert read_reply(f)[0] == 220
    assert read_reply(f)[0] == 250 and read_reply(f)[0] == 250
    s.close()


def test_smtplib_passes(sb):
    sb.start_daemon()
    t = time.time()
    with smtplib.SMTP("127.0.0.1", sb.port, timeout=20) as c:
        c.sendmail("a@c.example", [rcpt(sb)], "Subject: lib\r\n\r\nhi\r\n")
    assert time.time() - t >= 0.9  # greet-pause=1 held the greeting back
    with smtplib.SMTP("127.0.0.1", sb.port, timeout=20) as c:
        c.helo("c.example")  # HELO, no pipelining: fine
        c.sendmail("a@c.example", [rcpt(sb)], "Subject: helo\r\n\r\nhi\r\n")
    assert len(sb.wait_for_mail(sb.acc["u1"], 2)) == 2


@pytest.mark.skipif(not shutil.which("swaks"), reason="swaks not installed")
def test_swaks_pipelining_passes(sb):
    sb.start_daemon()
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(sb.port),
                        "--from", "a@c.example", "--to", rcpt(sb), "--pipeline",
                        "--silent", "2"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert sb.wait_for_mail(sb.acc["u1"])


def test_bs_is_never_checked(sandbox):
    from smtpclient import bs
    r = bs(sandbox, b"HELO c.example\r\nNOOP\r\nQUIT\r\n", "-R", "203.0.113.7")
    assert [x[0] for x in r] == [220, 250, 250, 221]


@pytest.mark.skipif(not shutil.which("smtp-source"), reason="smtp-source (postfix) not installed")
@pytest.mark.parametrize("helo", [[], ["-d"]])  # HELO, no pipelining; -d: a connection per message
def test_smtp_source_passes(sb, helo):
    sb.start_daemon()
    r = subprocess.run(["smtp-source", *helo, "-m", "3", "-s", "1", "-f", "a@c.example",
                        "-t", rcpt(sb), "127.0.0.1:%d" % sb.port],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert b"queue id" not in r.stderr  # every message was answered 250 (smtp-source checks)
    if len(sb.wait_for_mail(sb.acc["u1"], 3, timeout=10)) < 3:
        sb.runq()  # a delivery deferred by mailbox contention (seen once) goes now
    assert len(sb.wait_for_mail(sb.acc["u1"], 3)) == 3
