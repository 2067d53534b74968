"""The av= message scanner and the spam= actions it drives (bounce, accept,
folder), through -bs sessions as root (the scanner then runs as user=) and
the daemon.  The scanner is a small script written by each test."""
import mailbox
import os
import pwd
import stat
import time

import pytest

from smtpclient import bs

IS_ROOT = os.geteuid() == 0
pytestmark = pytest.mark.skipif(not IS_ROOT, reason="needs root: the scanner runs as user=")

SCANNER = """#!/bin/sh
# record what we were given and as whom, then judge
cat > "%(dir)s/scanned.txt"
id -u > "%(dir)s/scanner-uid.txt"
if grep -q EICAR "%(dir)s/scanned.txt"; then
    echo "Eicar-Test-Signature FOUND"
    echo "second line"
    exit 1
fi
if grep -q SLOW "%(dir)s/scanned.txt"; then
    sleep 30
fi
if grep -q TEMP "%(dir)s/scanned.txt"; then
    exit 75
fi
exit 0
"""


@pytest.fixture
def av(sandbox):
    path = os.path.join(sandbox.dir, "scanner")
    with open(path, "w") as f:
        f.write(SCANNER % {"dir": sandbox.dir})
    os.chmod(path, 0o755)
    os.chmod(sandbox.dir, 0o777)  # the scanner (user=) writes its notes here
    sandbox.write_config(av=path + " --stdin", av_timeout=3, load=0)
    return path


def send(sandbox, rcpts, body, sender="sender@elsewhere.example", subject="test"):
    lines = ["EHLO client.example", "MAIL FROM:<%s>" % sender]
    lines += ["RCPT TO:<%s>" % r for r in rcpts]
    lines += ["DATA", "Subject: %s" % subject, "", body, ".", "QUIT"]
    return bs(sandbox, ("\r\n".join(lines) + "\r\n").encode())


def final(replies):
    """The reply to the end of data (the one after 354)."""
    for i, (code, _) in enumerate(replies):
        if code == 354:
            return replies[i + 1]
    raise AssertionError(replies)


def test_clean_message_passes_with_from_line(sandbox, av):
    u1 = sandbox.acc["u1"]
    r = send(sandbox, [u1], "hello there")
    assert final(r)[0] == 250, r
    text = open(os.path.join(sandbox.dir, "scanned.txt")).read()
    assert text.startswith("From sender@elsewhere.example ")
    assert "Subject: test" in text and "hello there" in text
    uid = int(open(os.path.join(sandbox.dir, "scanner-uid.txt")).read())
    assert uid == pwd.getpwnam(sandbox.acc["spool"]).pw_uid != 0
    sandbox.runq()
    msgs = sandbox.wait_for_mail(u1)
    assert len(msgs) == 1 and msgs[0]["X-Spam"] is None


def test_spam_bounce_default(sandbox, av):
    r = send(sandbox, [sandbox.acc["u1"]], "X5O EICAR test")
    code, lines = final(r)
    assert code == 554, r
    assert b"5.7.1" in lines[0] and b"Eicar-Test-Signature FOUND second line" in lines[0]
    assert not sandbox.queue_files()


def test_spam_bounce_with_reason(sandbox, av):
    sandbox.write_config(spam="bounce:I do believe you contain a germ")
    code, lines = final(send(sandbox, [sandbox.acc["u1"]], "EICAR"))
    assert code == 554 and b"contain a germ" in lines[0] and b"Eicar" not in lines[0]


def test_spam_accept_adds_header_and_keeps_existing(sandbox, av):
    sandbox.write_config(spam="accept")
    u1 = sandbox.acc["u1"]
    lines = ["EHLO c", "MAIL FROM:<s@elsewhere.example>", "RCPT TO:<%s>" % u1, "DATA",
             "X-Spam: their own verdict", "Subject: s", "", "EICAR", ".", "QUIT"]
    r = bs(sandbox, ("\r\n".join(lines) + "\r\n").encode())
    assert final(r)[0] == 250, r
    sandbox.runq()
    msgs = sandbox.wait_for_mail(u1)
    assert len(msgs) == 1
    spam = msgs[0].get_all("X-Spam")
    assert spam == ["Eicar-Test-Signature FOUND second line", "their own verdict"], spam
    assert msgs[0]["Subject"] == "s"
    assert "EICAR" in msgs[0].get_payload()
    # our header goes after our Received:, before the message's own
    keys = [k.lower() for k in msgs[0].keys()]
    assert keys.index("received") < keys.index("x-spam")


def test_spam_folder_in_spool(sandbox, av):
    sandbox.write_config(spam="folder:spam")
    u1, u2 = sandbox.acc["u1"], sandbox.acc["u2"]
    r = send(sandbox, [u1, u2 + "@" + sandbox.hostname, "someone@remote.example"], "EICAR")
    assert final(r)[0] == 250, r
    ctl = list(sandbox.queued().values())[0][1]
    assert "someone@remote.example" in ctl  # remote: as accept
    sandbox.write_config(relay_host="[127.0.0.1]:9")  # the remote copy just waits
    sandbox.runq()
    for u in (u1, u2):
        path = os.path.join(sandbox.spool, u + ":spam")
        deadline = time.time() + 10
        while not os.path.exists(path) and time.time() < deadline:
            time.sleep(0.05)
        box = mailbox.mbox(path, create=False)
        msgs = list(box)
        assert len(msgs) == 1 and msgs[0]["X-Spam"].startswith("Eicar"), u
        st = os.stat(path)
        assert st.st_uid == pwd.getpwnam(u).pw_uid
    assert sandbox.mbox(u1) == [] and sandbox.mbox(u2) == []


def test_spam_folder_in_home(sandbox, av, tmp_path):
    sandbox.write_config(spam="folder:~/Junk")
    u1 = sandbox.acc["u1"]
    home = pwd.getpwnam(u1).pw_dir
    if not os.path.isdir(home):
        pytest.skip("%s has no home directory" % u1)
    junk = os.path.join(home, "Junk")
    if os.path.exists(junk):
        os.unlink(junk)
    try:
        assert final(send(sandbox, [u1], "EICAR"))[0] == 250
        sandbox.runq()
        deadline = time.time() + 10
        while not os.path.exists(junk) and time.time() < deadline:
            time.sleep(0.05)
        msgs = list(mailbox.mbox(junk, create=False))
        assert len(msgs) == 1 and msgs[0]["X-Spam"]
        assert sandbox.mbox(u1) == []
    finally:
        if os.path.exists(junk):
            os.unlink(junk)


def test_scanner_timeout_tempfails(sandbox, av):
    t = time.time()
    code, lines = final(send(sandbox, [sandbox.acc["u1"]], "SLOW"))
    assert code == 451 and b"4.3.0" in lines[0]
    assert time.time() - t < 15
    assert not sandbox.queue_files()


def test_scanner_tempfail_exit(sandbox, av):
    assert final(send(sandbox, [sandbox.acc["u1"]], "TEMP"))[0] == 451


def test_scanner_missing_tempfails(sandbox, av):
    sandbox.write_config(av=os.path.join(sandbox.dir, "no-such-scanner"))
    assert final(send(sandbox, [sandbox.acc["u1"]], "hi"))[0] == 451


def test_av_option_absolute_path_only(sandbox):
    sandbox.write_config(av="scanner")
    r = sandbox.run("postoffice", "-bs", input=b"QUIT\r\n")
    assert r.returncode != 0 and b"av" in r.stderr


def test_sendmail_front_end_refuses_flagged(sandbox, av):
    u1 = sandbox.acc["u1"]
    r = sandbox.sendmail(u1, message="Subject: x\n\nEICAR\n")
    assert r.returncode == 69, r  # EX_UNAVAILABLE, as the original
    assert b"Eicar-Test-Signature FOUND second line\n" in r.stderr
    assert not sandbox.queue_files()
    text = open(os.path.join(sandbox.dir, "scanned.txt")).read()
    assert text.startswith("From root@") and "EICAR" in text
    # root's submission is scanned as user=, never as root
    uid = int(open(os.path.join(sandbox.dir, "scanner-uid.txt")).read())
    assert uid == pwd.getpwnam(sandbox.acc["spool"]).pw_uid
    r = sandbox.sendmail(u1, message="Subject: x\n\nTEMP\n")
    assert r.returncode == 75 and not sandbox.queue_files(), r


def test_sendmail_front_end_as_user(sandbox, av):
    u1, u2 = sandbox.acc["u1"], sandbox.acc["u2"]
    r = sandbox.sendmail(u2, message="Subject: y\n\nclean\n", user=u1)
    assert r.returncode == 0, r
    uid = int(open(os.path.join(sandbox.dir, "scanner-uid.txt")).read())
    assert uid == pwd.getpwnam(u1).pw_uid
    r = sandbox.sendmail(u2, message="Subject: y\n\nEICAR\n", user=u1)
    assert r.returncode == 69


def test_daemon_session_scans(sandbox, av):
    """The same in the daemon's session child (user=), through smtplib."""
    import smtplib
    sandbox.write_config(spam="accept")
    sandbox.start_daemon()
    u1 = sandbox.acc["u1"]
    with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=30) as c:
        c.sendmail("a@elsewhere.example", [u1], "Subject: one\r\n\r\nclean\r\n")
        c.sendmail("a@elsewhere.example", [u1], "Subject: two\r\n\r\nEICAR\r\n")
    msgs = sorted(sandbox.wait_for_mail(u1, 2), key=lambda m: m["Subject"])
    assert [m["Subject"] for m in msgs] == ["one", "two"]
    assert msgs[0]["X-Spam"] is None and msgs[1]["X-Spam"].startswith("Eicar")


def test_daemon_session_refuses(sandbox, av):
    import smtplib
    sandbox.start_daemon()
    u1 = sandbox.acc["u1"]
    with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=30) as c:
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail("a@elsewhere.example", [u1], "Subject: three\r\n\r\nEICAR\r\n")
        assert e.value.smtp_code == 554
        e2 = None
        try:
            c.sendmail("a@elsewhere.example", [u1], "Subject: four\r\n\r\nSLOW\r\n")
        except smtplib.SMTPDataError as x:
            e2 = x
        assert e2 is not None and e2.smtp_code == 451  # killed at av-timeout=


def test_scanner_that_reads_nothing(sandbox, av):
    """A program that exits without reading a big message: answered at once."""
    sandbox.write_config(av="/bin/false", av_timeout=20)
    t = time.time()
    code, lines = final(send(sandbox, [sandbox.acc["u1"]], "x" * 100 + "\r\n" + "y" * 3000000))
    assert code == 554 and b"flagged by the scanner" in lines[0], lines
    assert time.time() - t < 10
