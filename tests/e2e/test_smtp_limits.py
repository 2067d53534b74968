"""Session limits: line length, errors, message size, hops, idle timeout,
total session time, slow clients not holding up others."""
import os
import shutil
import subprocess
import time

import pytest

from smtpclient import Raw


@pytest.fixture(autouse=True)
def _no_load_limit(sandbox):
    """The shared test machine is often loaded: load= would refuse us."""
    sandbox.write_config(load=0)


def rcpt(sb):
    return "%s@%s" % (sb.acc["u1"], sb.hostname)


def open_txn(sb):
    c = Raw(sb.port)
    c.reply()
    assert c.cmd("EHLO client.example")[0] == 250
    assert c.cmd("MAIL FROM:<a@x.example>")[0] == 250
    assert c.cmd("RCPT TO:<%s>" % rcpt(sb))[0] == 250
    return c


def test_long_line_not_split(sandbox):
    sandbox.write_config(line_length=512)
    sandbox.start_daemon()
    c = Raw(sandbox.port)
    c.reply()
    c.cmd("EHLO client.example")
    # if the server split this line, "RSET" at its tail would get its own reply
    c.send("NOOP " + "x" * 600 + " RSET\r\nNOOP\r\n")
    code, lines = c.reply()
    assert code == 500 and lines[0].startswith(b"5.5.6"), lines
    code, lines = c.reply()
    assert code == 250 and lines[0] == b"2.0.0 OK"
    # 64 KiB without a line end: answered once, the session lives on
    c.send("X" * 65536 + "\r\nNOOP\r\n")
    assert c.reply()[0] == 500
    assert c.reply()[0] == 250
    c.close()


def test_too_many_errors(sandbox):
    sandbox.write_config(max_errors=3)
    sandbox.start_daemon()
    c = Raw(sandbox.port)
    c.reply()
    for _ in range(3):
        assert c.cmd("BOGUS")[0] == 500
    code, lines = c.cmd("NOOP")
    assert code == 421 and lines[0].startswith(b"4.7.0")
    assert c.closed()
    c.close()


def test_size_declared(sandbox):
    sandbox.write_config(size=1000)
    sandbox.start_daemon()
    c = Raw(sandbox.port)
    c.reply()
    code, lines = c.cmd("EHLO client.example")
    assert b"SIZE 1000" in lines
    code, lines = c.cmd("MAIL FROM:<a@x.example> SIZE=5000")
    assert code == 552 and lines[0].startswith(b"5.3.4")
    assert c.cmd("MAIL FROM:<a@x.example> SIZE=500")[0] == 250
    c.close()


def test_size_while_reading(sandbox):
    sandbox.write_config(size=1000)
    sandbox.start_daemon()
    c = open_txn(sandbox)
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: big\r\n\r\n" + (b"y" * 70 + b"\r\n") * 100 + b".\r\n")
    code, lines = c.reply()
    assert code == 552 and lines[0].startswith(b"5.3.4")
    assert c.cmd("NOOP")[0] == 250
    c.close()
    assert not sandbox.queue_files()


def test_hops(sandbox):
    sandbox.write_config(hops=3)
    sandbox.start_daemon()
    c = open_txn(sandbox)
    assert c.cmd("DATA")[0] == 354
    c.send(b"Received: from a\r\nReceived: from b\r\nreceived: from c\r\n"
           b"RECEIVED: from d\r\nSubject: loop\r\n\r\nbody\r\nReceived: in body\r\n.\r\n")
    code, lines = c.reply()
    assert code == 554 and lines[0].startswith(b"5.4.6")
    # at the limit is fine (Received: lines in the body do not count)
    assert c.cmd("MAIL FROM:<a@x.example>")[0] == 250
    assert c.cmd("RCPT TO:<%s>" % rcpt(sandbox))[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Received: from a\r\nReceived: from b\r\n\r\nbody\r\nReceived: x\r\n"
           b"Received: y\r\n.\r\n")
    assert c.reply()[0] == 250
    c.close()


def test_idle_timeout(sandbox):
    sandbox.write_config(timeout=1)
    sandbox.start_daemon()
    c = Raw(sandbox.port)
    c.reply()
    code, lines = c.reply()  # we say nothing: the server gives up
    assert code == 421 and lines[0].startswith(b"4.4.2")
    assert c.closed()
    c.close()


def test_session_time_limit(sandbox):
    sandbox.write_config(session_timeout=2, timeout=60)
    sandbox.start_daemon()
    c = Raw(sandbox.port)
    c.reply()
    # keep the session busy; the total time still ends it
    while True:
        code, lines = c.cmd("NOOP")
        if code != 250:
            break
        import time
        time.sleep(0.2)
    assert code == 421 and b"session time" in lines[0]
    c.close()


def test_slow_client_does_not_hold_up_others(sandbox):
    sandbox.write_config(timeout=30)
    sandbox.start_daemon()
    slow = Raw(sandbox.port)
    slow.reply()
    slow.send("EHLO slo")  # half a command, then silence
    fast = open_txn(sandbox)
    assert fast.cmd("DATA")[0] == 354
    fast.send("Subject: fast\r\n\r\nx\r\n.\r\n")
    assert fast.reply()[0] == 250
    assert fast.cmd("QUIT")[0] == 221
    fast.close()
    slow.close()


def test_slowloris_in_data_times_out(sandbox):
    sandbox.write_config(timeout=1)
    sandbox.start_daemon()
    c = open_txn(sandbox)
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: slow\r\n\r\npart")
    code, lines = c.reply()
    assert code == 421 and lines[0].startswith(b"4.4.2")
    c.close()
    assert not sandbox.queue_files()


def test_hostile_commands(sandbox):
    sandbox.start_daemon()
    c = Raw(sandbox.port)
    c.reply()
    code, lines = c.cmd("EHLO " + "h" * 300)  # CVE-2019-16928 pattern
    assert code == 501 and lines[0].startswith(b"5.5.4")
    code, lines = c.cmd(b"EHLO a\x00b")
    assert code == 500 and lines[0].startswith(b"5.5.2")
    code, lines = c.cmd(b"NOOP \rQUIT")  # a bare CR never starts a command
    assert code == 500
    assert c.cmd("EHLO client.example")[0] == 250
    c.cmd("MAIL FROM:<a@x.example>")
    for evil in ["<;sleep 5;@%s>", "<`id`@%s>", "<|/bin/sh@%s>", "<-oQ/tmp@%s>",
                 "<\"a\\\"b\"@%s>"]:
        code, lines = c.cmd("RCPT TO:" + evil % sandbox.hostname)
        assert code >= 500, (evil, code, lines)
    assert c.cmd("QUIT")[0] == 221
    c.close()


DEFAULT_SIZE = 52428800  # 50 MiB: postoffice.cf(5) says why


def test_size_default_in_force(sandbox):
    """Without size= the limit is 50 MiB, announced in EHLO and applied to
    SIZE= at MAIL."""
    sandbox.start_daemon()
    c = Raw(sandbox.port)
    c.reply()
    code, lines = c.cmd("EHLO client.example")
    assert b"SIZE %d" % DEFAULT_SIZE in lines, lines
    code, lines = c.cmd("MAIL FROM:<a@x.example> SIZE=%d" % (DEFAULT_SIZE + 1))
    assert code == 552 and lines[0].startswith(b"5.3.4"), lines
    assert c.cmd("MAIL FROM:<a@x.example> SIZE=%d" % DEFAULT_SIZE)[0] == 250
    c.close()


def test_size_default_while_streaming(sandbox):
    """A client streaming past 50 MiB without declaring a size is read to the
    end of its data and refused; nothing stays in the queue."""
    sandbox.start_daemon()
    c = open_txn(sandbox)
    assert c.cmd("DATA")[0] == 354
    line = b"z" * 1022 + b"\r\n"
    block = b"Subject: big\r\n\r\n" + line * 1024  # 1 MiB
    for _ in range(51):
        c.send(block)
    c.send(b".\r\n")
    code, lines = c.reply()
    assert code == 552 and lines[0].startswith(b"5.3.4"), lines
    assert c.cmd("NOOP")[0] == 250
    c.close()
    assert not sandbox.queue_files()
    assert not [f for f in os.listdir(sandbox.queue) if f.startswith("tf")]


def test_size_zero_is_unlimited(sandbox):
    sandbox.write_config(size=0)
    sandbox.start_daemon()
    c = Raw(sandbox.port)
    c.reply()
    code, lines = c.cmd("EHLO client.example")
    assert b"SIZE" in lines, lines  # no number: no limit (RFC 1870)
    assert c.cmd("MAIL FROM:<a@x.example> SIZE=%d" % (DEFAULT_SIZE * 100))[0] == 250
    c.close()


def test_size_stops_storing_at_the_limit(sandbox):
    """Past size= the partial queue file is removed at once, not when the
    client finally ends its data; the session lives on."""
    sandbox.write_config(size=100000)
    sandbox.start_daemon()
    c = open_txn(sandbox)
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * 300)
    deadline = time.time() + 10
    temps = None
    while time.time() < deadline:
        temps = [f for f in os.listdir(sandbox.queue) if f.startswith("tf")]
        if not temps:
            break
        time.sleep(0.05)
    assert not temps, temps
    # still reading (and discarding) until the end of the data
    c.send(b"more\r\n" * 1000 + b".\r\n")
    code, lines = c.reply()
    assert code == 552 and lines[0].startswith(b"5.3.4") and b"100000" in lines[0], lines
    assert c.cmd("NOOP")[0] == 250
    c.close()
    assert not sandbox.queue_files()


def _unshare_ok():
    return os.geteuid() == 0 and shutil.which("unshare") is not None


def test_minfree_checked_as_the_message_grows(sandbox):
    """minfree= is checked again while the data comes in: a message that
    fills the queue's file system past it gets 452 4.3.1 and leaves nothing.
    The queue is a private 12 MiB tmpfs in a mount namespace of its own."""
    if not _unshare_ok():
        pytest.skip("needs root and unshare(1) to mount a small tmpfs privately")
    sandbox.write_config(minfree="4m", verify_from=0)
    body = b"Subject: grows\r\n\r\n" + (b"w" * 1022 + b"\r\n") * (10 * 1024)  # 10 MiB
    script = (b"EHLO c\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<%s>\r\nDATA\r\n" %
              rcpt(sandbox).encode() + body + b".\r\nNOOP\r\nQUIT\r\n")
    inner = os.path.join(sandbox.dir, "inner.sh")
    with open(inner, "w") as f:
        f.write('set -e\n'
                'mount -t tmpfs -o size=12m,mode=0755 tmpfs "$1"\n'
                '"$5" -C "$3" >&2\n'   # runq: the queue's layout and owner
                '"$2" -C "$3" -bs <"$4"\n'
                'echo LEFT: $(ls -A "$1" | grep -c -E "^(qf|tf)") >&2\n')
    scr = os.path.join(sandbox.dir, "script")
    with open(scr, "wb") as f:
        f.write(script)
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", inner,
                        sandbox.queue, sandbox.cmd("postoffice")[0], sandbox.cf, scr,
                        sandbox.cmd("runq")[0]],
                       capture_output=True, timeout=120)
    err = r.stderr.decode(errors="replace")
    replies = parse_replies(r.stdout)
    assert [x[0] for x in replies] == [220, 250, 250, 250, 354, 452, 250, 221], (replies, err)
    assert replies[5][1][0].startswith(b"4.3.1"), replies
    assert "LEFT: 0" in err, err


def parse_replies(out):
    """(code, [lines]) of each reply in a -bs session's output."""
    replies, cur = [], []
    for line in out.split(b"\r\n"):
        if not line:
            continue
        cur.append(line[4:])
        if line[3:4] == b" ":
            replies.append((int(line[:3]), cur))
            cur = []
    return replies
