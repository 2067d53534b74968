"""Shared fixtures for the end-to-end tests.

Every test gets a private sandbox: a directory holding the queue, the mail spool,
the aliases file and a postoffice.cf that points at them, plus a bin/ directory
of personality links (sendmail, mailq, runq, newaliases, smtpd).  Nothing touches
/etc, /var/mail or port 25.

When the tests run as root (CI), a few unprivileged accounts are created for the
session (potest = the spool owner, user=; pouser1/pouser2 = mailbox owners) and
removed afterwards.  When not root, the current user plays every part.
"""
import mailbox
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.path.join(ROOT, "postoffice")
IS_ROOT = os.geteuid() == 0
TEST_USERS = ("potest", "pouser1", "pouser2")


def _ensure_user(name):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        home = f"/tmp/{name}-home"
        subprocess.run(["useradd", "-M", "-d", home, "-s", "/bin/sh", name],
                       check=True)
        os.makedirs(home, exist_ok=True)
        pw = pwd.getpwnam(name)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        os.chmod(home, 0o755)
        return pw


@pytest.fixture(scope="session")
def accounts():
    """Names to use: spool owner and two mailbox owners."""
    if not IS_ROOT:
        me = pwd.getpwuid(os.getuid()).pw_name
        yield {"spool": me, "u1": me, "u2": me, "created": False}
        return
    created = [n for n in TEST_USERS if not _user_exists(n)]
    for n in TEST_USERS:
        _ensure_user(n)
    yield {"spool": "potest", "u1": "pouser1", "u2": "pouser2", "created": True}
    for n in created:
        subprocess.run(["userdel", n], check=False)
        shutil.rmtree(f"/tmp/{n}-home", ignore_errors=True)


def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


QF_HDR_LEN = 22  # "POQ2 " (or the first version's "POQ1 ") + 16 hex digits (the data length) + LF


def read_qf(path):
    """(data bytes, control text) of queue file path (postoffice-queue(5)):
    the header gives the data length; the control records, the end line and
    the appended status records follow the data."""
    with open(path, "rb") as f:
        raw = f.read()
    assert raw[:5] in (b"POQ2 ", b"POQ1 ") and raw[QF_HDR_LEN - 1:QF_HDR_LEN] == b"\n", raw[:QF_HDR_LEN]
    n = int(raw[5:QF_HDR_LEN - 1], 16)
    return raw[QF_HDR_LEN:QF_HDR_LEN + n], raw[QF_HDR_LEN + n:].decode("utf-8", "replace")


class Sandbox:
    PERSONALITIES = ("sendmail", "mailq", "runq", "newaliases", "smtpd",
                     "send-mail", "postoffice")

    def __init__(self, accounts):
        self.acc = accounts
        self.dir = tempfile.mkdtemp(prefix="po-sandbox-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.queue = os.path.join(self.dir, "queue")
        self.spool = os.path.join(self.dir, "mail")
        self.aliases = os.path.join(self.dir, "aliases")
        self.cf = os.path.join(self.dir, "postoffice.cf")
        self.bin = os.path.join(self.dir, "bin")
        self.pidfile = os.path.join(self.dir, "postoffice.pid")
        self.hostname = "mx.test.example"
        os.makedirs(self.spool)
        os.chmod(self.spool, 0o1777)
        os.makedirs(self.bin)
        for p in self.PERSONALITIES:
            os.symlink(BINARY, os.path.join(self.bin, p))
        with open(self.aliases, "w") as f:
            f.write("postmaster: %s\nMAILER-DAEMON: postmaster\n" % accounts["u1"])
        # the shared machines that run the suite are often loaded: a test
        # about load= sets it; the others must not be refused by it
        self.options = {"load": 0}
        self.write_config()
        self.procs = []
        # a queue run creates the queue with its owner and modes, as an admin's
        # first start of the daemon would
        r = self.run("runq")
        assert r.returncode == 0, r.stderr

    # ---- configuration ----
    def write_config(self, **opts):
        """(Re)write postoffice.cf.  Keyword names use _ for -; True = bare flag."""
        self.options.update(opts)
        lines = [
            f"queuedir={self.queue}",
            f"mailspool={self.spool}",
            f"aliases={self.aliases}",
            f"pidfile={self.pidfile}",
            f"user={self.acc['spool']}",
            f"hostname={self.hostname}",
            f"banner={os.path.join(self.dir, 'issue.smtp')}",
            # virtual domains (vhosts(7)) in the sandbox too, never /etc/virtual
            f"vhostdir={os.path.join(self.dir, 'virtual')}",
            f"vspool={os.path.join(self.dir, 'vspool')}",
        ]
        for k, v in self.options.items():
            k = k.replace("_", "-")
            if v is True:
                lines.append(k)
            elif v is not None and v is not False:
                for item in (v if isinstance(v, (list, tuple)) else [v]):
                    lines.append(f"{k}={item}")
        with open(self.cf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def set_aliases(self, text, build=True):
        with open(self.aliases, "w") as f:
            f.write(text)
        if build:
            r = self.run("newaliases")
            assert r.returncode == 0, r.stderr

    # ---- running the binary ----
    def cmd(self, personality, *args):
        return [os.path.join(self.bin, personality), "-C", self.cf, *args]

    def run(self, personality, *args, input=None, user=None, timeout=60, env=None):
        """Run a personality; user= runs it as that account (root only)."""
        argv = self.cmd(personality, *args)
        kw = {}
        if user is not None and IS_ROOT:
            pw = pwd.getpwnam(user)
            kw = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        e = dict(os.environ)
        if env:
            e.update(env)
        if isinstance(input, str):
            input = input.encode()
        return subprocess.run(argv, input=input, capture_output=True,
                              timeout=timeout, env=e, **kw)

    def sendmail(self, *args, message="", user=None, env=None):
        return self.run("sendmail", *args, input=message, user=user, env=env)

    def runq(self, *args):
        r = self.run("runq", *args)
        return r

    def mailq(self):
        return self.run("mailq")

    # ---- results ----
    def mbox_path(self, user):
        return os.path.join(self.spool, user)

    def mbox(self, user):
        """Messages in user's mailbox, read with python's mailbox module."""
        path = self.mbox_path(user)
        if not os.path.exists(path):
            return []
        box = mailbox.mbox(path, create=False)
        try:
            return list(box)
        finally:
            box.close()

    def wait_for_mail(self, user, count=1, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            msgs = self.mbox(user)
            if len(msgs) >= count:
                return msgs
            time.sleep(0.05)
        return self.mbox(user)

    def queue_files(self):
        """Names of the queue files (qf<qid>, one per message)."""
        if not os.path.isdir(self.queue):
            return []
        return sorted(f for f in os.listdir(self.queue) if f.startswith("qf"))

    def queued(self):
        """{qid: (data bytes, control text)} of the messages in the queue."""
        out = {}
        for f in self.queue_files():
            try:
                out[f[2:]] = read_qf(os.path.join(self.queue, f))
            except FileNotFoundError:
                pass  # delivered meanwhile
        return out

    def wait_queue_empty(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self.queue_files():
                return True
            time.sleep(0.05)
        return False

    # ---- daemon ----
    def start_daemon(self, *args, port=None):
        """postoffice -bD in the foreground on a free loopback port."""
        self.port = port or free_port()
        if "listen" not in self.options:
            self.write_config(listen=f"127.0.0.1:{self.port}")
        p = subprocess.Popen(self.cmd("postoffice", "-bD", *args),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.procs.append(p)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return p
            except OSError:
                if p.poll() is not None:
                    raise RuntimeError("daemon exited: %s" % p.stderr.read().decode())
                time.sleep(0.05)
        raise RuntimeError("daemon did not start listening")

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def sandbox(accounts):
    sb = Sandbox(accounts)
    yield sb
    sb.close()


def pytest_report_header(config):
    return "postoffice e2e: binary %s, running as %s" % (
        BINARY, "root" if IS_ROOT else pwd.getpwuid(os.getuid()).pw_name)
