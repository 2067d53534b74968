"""Mailbox delivery over LMTP (mailbox=lmtp:..., lmtp.h, postoffice.cf(5)) to
a real dovecot LMTP server the test starts with a private configuration: its
own base_dir, a passwd-file userdb holding the test users, maildirs in the
sandbox, an LMTP listener on a unix socket and one on a loopback TCP port.

What arrived is read back with doveadm and with python's mailbox module (the
maildir dovecot wrote); the per-recipient outcomes with mailq and the bounce."""
import mailbox
import os
import pwd
import shutil
import socket
import subprocess
import time

import pytest

from conftest import IS_ROOT, free_port

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"
LMTPD = "/usr/lib/dovecot/lmtp"

pytestmark = [
    pytest.mark.skipif(not IS_ROOT, reason="dovecot's LMTP writes as the test users: "
                       "needs root"),
    pytest.mark.skipif(not (os.path.exists(DOVECOT) and os.path.exists(LMTPD)),
                       reason="dovecot-core and dovecot-lmtpd are not installed "
                       "(./bootstrap.sh installs them)"),
]

CONF = """\
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols = lmtp
ssl = no
first_valid_uid = 1
postmaster_address = postmaster@mx.test.example
passdb {{
  driver = passwd-file
  args = {base}/users
}}
userdb {{
  driver = passwd-file
  args = {base}/users
}}
mail_location = maildir:~/Maildir
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"""


class Dovecot:
    """A private dovecot with an LMTP listener on a unix socket and on TCP."""

    def __init__(self, base, users):
        self.base = base
        self.port = free_port()
        self.sock = os.path.join(base, "run", "lmtp")
        self.conf = os.path.join(base, "dovecot.conf")
        self.proc = None
        for d in ("run", "state", "home"):
            os.makedirs(os.path.join(base, d), exist_ok=True)
        lines = []
        for name, account in users.items():
            pw = pwd.getpwnam(account)
            home = self.home(name)
            os.makedirs(home)
            os.chown(home, pw.pw_uid, pw.pw_gid)
            lines.append("%s:{PLAIN}x:%d:%d::%s::" % (name, pw.pw_uid, pw.pw_gid, home))
        with open(os.path.join(base, "users"), "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(self.conf, "w") as f:
            f.write(CONF.format(base=base, port=self.port))

    def home(self, name):
        return os.path.join(self.base, "home", name)

    def start(self):
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 20
        while time.time() < deadline:
            assert self.proc.poll() is None, self.proc.stderr.read()
            if self.listening():
                return
            time.sleep(0.1)
        raise AssertionError("dovecot did not start: " + self.log())

    def listening(self):
        """Both listeners answer (a socket file left by an earlier run does not)."""
        try:
            with socket.socket(socket.AF_UNIX) as u:
                u.connect(self.sock)
            socket.create_connection(("127.0.0.1", self.port), timeout=2).close()
            return True
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        self.proc = None

    def log(self):
        p = os.path.join(self.base, "dovecot.log")
        return open(p).read() if os.path.exists(p) else "(no dovecot log)"

    def fetch(self, user, what="text"):
        """doveadm fetch of every message in user's INBOX (dovecot's own reader)."""
        r = subprocess.run([DOVEADM, "-c", self.conf, "fetch", "-u", user, what,
                            "mailbox", "INBOX", "all"], capture_output=True, timeout=60)
        assert r.returncode == 0, (r.stdout, r.stderr, self.log())
        return r.stdout.decode("utf-8", "replace")

    def maildir(self, user):
        """The raw messages dovecot wrote for user (python's mailbox module)."""
        path = os.path.join(self.home(user), "Maildir")
        if not os.path.isdir(path):
            return []
        box = mailbox.Maildir(path, factory=None, create=False)
        return [box.get_bytes(k) for k in sorted(box.keys())]


@pytest.fixture
def dove(sandbox):
    u1, u2 = sandbox.acc["u1"], sandbox.acc["u2"]
    d = Dovecot(os.path.join(sandbox.dir, "dovecot"),
                {u1: u1, u2: u2, "joe@one.example": u1})
    d.start()
    yield d
    d.stop()


def send(sb, rcpts, subject, sender=None, body=None):
    sender = sender or "sender@example.org"
    msg = "Subject: %s\nFrom: %s\n\n%s" % (subject, sender, body or "body of %s\n" % subject)
    r = sb.sendmail("-i", "-odq", "-f", sender, *rcpts, message=msg)
    assert r.returncode == 0, r.stderr


def test_unix_socket_many_recipients_and_one_unknown(sandbox, dove):
    """Three messages in one run over the unix socket, one session; potest is an
    account here but unknown to dovecot: it bounces with dovecot's words, the
    others arrive."""
    sb = sandbox
    u1, u2, stranger = sb.acc["u1"], sb.acc["u2"], sb.acc["spool"]
    sb.write_config(mailbox="lmtp:unix:" + dove.sock)
    send(sb, [u1, u2, stranger], "first", sender=f"{u2}@{sb.hostname}")
    send(sb, [u1], "second")
    send(sb, [u2], "third")
    r = sb.runq("-v")
    out = r.stderr.decode()
    # one session for the three messages (the bounce comes in one of its own)
    first = out.split("lmtp CLOSE")[0]
    assert first.count("OPEN (lmtp:unix:") == 1 and first.count("LHLO") == 1, out
    assert first.count("MAIL FROM:") == 3 and first.count("RCPT TO:") == 5, out
    assert sb.wait_queue_empty(), sb.mailq().stdout
    s1 = dove.fetch(u1, "hdr.subject")
    assert "first" in s1 and "second" in s1, s1
    s2 = dove.fetch(u2, "hdr.subject")
    assert "first" in s2 and "third" in s2, s2
    assert not os.path.exists(sb.mbox_path(u1))  # not the spool
    # the bounce (delivered over LMTP too, to the sender u2) names the
    # recipient and carries dovecot's own answer
    bounce = [m for m in dove.maildir(u2) if m.startswith(b"Return-Path: <>")]
    assert len(bounce) == 1, dove.maildir(u2)
    text = bounce[0].decode("utf-8", "replace")
    assert stranger in text and "User doesn't exist" in text and "550" in text, text
    log = dove.log()
    assert "saved mail to INBOX" in log


def test_tcp_dots_and_8bit_arrive_intact(sandbox, dove):
    """lmtp:[127.0.0.1]:PORT; dot-stuffing and 8-bit text survive the trip."""
    sb = sandbox
    u1 = sb.acc["u1"]
    sb.write_config(mailbox="lmtp:[127.0.0.1]:%d" % dove.port)
    body = (b"Subject: dots\nFrom: a@example.org\nContent-Type: text/plain; charset=utf-8\n"
            b"Content-Transfer-Encoding: 8bit\n\n"
            b".\n..two dots\n.leading dot\nh\xc3\xa9llo w\xc3\xb6rld\nlatin1 \xe9\n.\nend\n")
    r = sb.sendmail("-i", "-odq", "-f", "a@example.org", u1, message=body)
    assert r.returncode == 0, r.stderr
    r = sb.runq()
    assert sb.wait_queue_empty(), (sb.mailq().stdout, r.stderr)
    got = dove.maildir(u1)
    assert len(got) == 1
    # the body byte for byte (dot-stuffed on the wire, unstuffed by dovecot)
    assert got[0].split(b"\n\n", 1)[1] == body.split(b"\n\n", 1)[1], got[0]
    assert b"\nContent-Type: text/plain; charset=utf-8\n" in got[0]
    assert b"Return-Path: <a@example.org>" in got[0]
    assert "8bit" in dove.fetch(u1, "hdr")


def test_server_down_defers_then_delivers(sandbox, dove):
    """dovecot stopped: deferred with a reason mailq shows; started again: the
    next run delivers."""
    sb = sandbox
    u1, u2 = sb.acc["u1"], sb.acc["u2"]
    sb.write_config(mailbox="lmtp:unix:" + dove.sock)
    dove.stop()
    send(sb, [u1, u2], "later")
    sb.runq()
    q = sb.mailq().stdout.decode()
    assert len(sb.queued()) == 1
    assert "4.4.1" in q and "lmtp:unix:" in q and "cannot connect" in q, q
    _, ctl = list(sb.queued().values())[0]
    assert ctl.count("cannot connect") >= 2, ctl  # each recipient has its reason
    dove.start()
    r = sb.runq()  # by hand: tried now, whatever the back-off says
    assert sb.wait_queue_empty(), (sb.mailq().stdout, r.stderr)
    assert "later" in dove.fetch(u1, "hdr.subject")
    assert "later" in dove.fetch(u2, "hdr.subject")


def test_virtual_domain_lmtp_file(sandbox, dove):
    """VHOSTDIR/DOMAIN/lmtp sends that domain's users to its LMTP server as
    user@domain; local users keep the spool; a bad file defers with a reason."""
    sb = sandbox
    u1 = sb.acc["u1"]
    vdir = os.path.join(sb.dir, "virtual")
    vspool = os.path.join(sb.dir, "vspool")
    os.makedirs(os.path.join(vdir, "one.example"))
    os.makedirs(os.path.join(vdir, "two.example"))
    os.makedirs(vspool)
    with open(os.path.join(vdir, "domains.cf"), "w") as f:
        f.write("admin:one.example:1\nadmin:two.example:1\n")
    for dom in ("one.example", "two.example"):
        subprocess.run(["htpasswd", "-bBc", os.path.join(vdir, dom, "passwd"), "joe", "pw"],
                       check=True, capture_output=True)
    with open(os.path.join(vdir, "one.example", "lmtp"), "w") as f:
        f.write("# dovecot for this domain\nlmtp:[127.0.0.1]:%d\n" % dove.port)
    with open(os.path.join(vdir, "two.example", "lmtp"), "w") as f:
        f.write("/var/mail/%u\n")
    sb.write_config(vuser=sb.acc["spool"])
    send(sb, ["joe@one.example", "joe@two.example", u1], "virtual")
    r = sb.runq("-v")
    assert "virtual" in dove.fetch("joe@one.example", "hdr.subject"), (r.stderr, sb.mailq().stdout, sb.queued())
    assert [m["Subject"] for m in sb.mbox(u1)] == ["virtual"]
    q = sb.mailq().stdout.decode()
    assert "two.example/lmtp" in q and "not an LMTP server" in q, q
    assert not os.path.exists(os.path.join(vspool, "one.example", "joe"))
    # without its file, the domain follows mailbox=: the same server over the
    # unix socket, still as user@domain
    os.unlink(os.path.join(vdir, "one.example", "lmtp"))
    sb.write_config(mailbox="lmtp:unix:" + dove.sock)
    send(sb, ["joe@one.example"], "global")
    r = sb.runq("-v")
    assert "RCPT TO:<joe@one.example>" in r.stderr.decode(), r.stderr
    assert "global" in dove.fetch("joe@one.example", "hdr.subject")
    assert not os.path.exists(os.path.join(vspool, "one.example", "joe"))


def test_switched_off_domain_waits(sandbox, dove):
    """Targets of a virtual alias kept in the queue (dovecot was down) are not
    handed to the LMTP server once their domain is switched off: they wait,
    as they would for a mailbox file."""
    sb = sandbox
    vdir = os.path.join(sb.dir, "virtual")
    os.makedirs(os.path.join(vdir, "one.example"))
    os.makedirs(os.path.join(sb.dir, "vspool"))
    with open(os.path.join(vdir, "domains.cf"), "w") as f:
        f.write("admin:one.example:1\n")
    for i, user in enumerate(("joe", "ann")):
        subprocess.run(["htpasswd", "-bB" + ("c" if i == 0 else ""),
                        os.path.join(vdir, "one.example", "passwd"), user, "pw"],
                       check=True, capture_output=True)
    with open(os.path.join(vdir, "one.example", "aliases"), "w") as f:
        f.write("team: joe, ann\n")
    sb.write_config(vuser=sb.acc["spool"], mailbox="lmtp:unix:" + dove.sock)
    r = sb.run("newaliases", "one.example")
    assert r.returncode == 0, r.stderr
    dove.stop()
    send(sb, ["team@one.example"], "team")
    sb.runq()
    (_, ctl), = sb.queued().values()
    assert "\\joe@one.example" in ctl and "\\ann@one.example" in ctl, ctl
    with open(os.path.join(vdir, "domains.cf"), "w") as f:
        f.write("admin:one.example:0\n")
    dove.start()
    sb.runq()
    q = sb.mailq().stdout.decode()
    assert q.count("one.example is not an active virtual domain now") == 2, q
    assert "saved mail" not in dove.log()
