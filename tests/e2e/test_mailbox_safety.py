"""Mailbox safety (postoffice-local(8)): a killed writer or runner never leaves
half a message, root's mail has a mailbox, a dot-lock holds up its own mailbox
only (briefly), and files planted in the spool defer instead of bouncing."""
import os
import pwd
import signal
import stat
import subprocess
import time

import pytest

from conftest import IS_ROOT

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="needs root: mailboxes of several "
                                "accounts, a writer running as the recipient")

BIG_LINES = 600000  # 100-byte lines: a 60 MB message


def big_message(token):
    return (f"Subject: {token}\n\nBEGIN {token}\n" + ("y" * 99 + "\n") * BIG_LINES
            + f"END {token}\n")


def check_box(sandbox, user):
    """Subjects of user's messages, read with python's mailbox module; every
    message must be complete (nothing partial, nothing glued)."""
    out = []
    for m in sandbox.mbox(user):
        tok = m["Subject"]
        payload = m.get_payload()
        assert payload.startswith(f"BEGIN {tok}\n"), f"partial message {tok!r}"
        assert payload.endswith(f"END {tok}\n"), f"partial message {tok!r}"
        out.append(tok)
    return out


def small(token):
    return f"Subject: {token}\n\nBEGIN {token}\nhello\nEND {token}\n"


def parent_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def descendants_of(root, uid):
    """PIDs of root's descendants whose real uid is uid (only ours: other
    tests on the machine may run processes as the same test accounts)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/status") as f:
                ruid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
            if ruid != uid:
                continue
            pid = int(d)
            while pid > 1:
                pid = parent_of(pid)
                if pid == root:
                    pids.append(int(d))
                    break
        except (OSError, StopIteration, ValueError):
            pass
    return pids


def wait_size(path, size, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path) and os.path.getsize(path) >= size:
            return
        assert proc.poll() is None, "the queue run ended before the mailbox grew"
        time.sleep(0.002)
    raise AssertionError(f"{path} never reached {size} bytes")


def queue_big(sandbox, user):
    sandbox.write_config(size="100m")  # over the 50 MiB default
    r = sandbox.sendmail("-odq", "-i", user, message=small("first"))
    assert r.returncode == 0, r.stderr
    assert sandbox.runq().returncode == 0
    r = sandbox.sendmail("-odq", "-i", user, message=big_message("big"))
    assert r.returncode == 0, r.stderr
    return os.path.getsize(sandbox.mbox_path(user))


def test_killed_writer_leaves_no_fragment(sandbox, accounts):
    """kill -9 the child writing a 60 MB message at 6 MB: the runner (which
    opened and locked the mailbox and noted its size) cuts the fragment away;
    the next run delivers the message complete, once."""
    u = accounts["u1"]
    uid = pwd.getpwnam(u).pw_uid
    before = queue_big(sandbox, u)
    p = subprocess.Popen(sandbox.cmd("runq"), stderr=subprocess.PIPE)
    wait_size(sandbox.mbox_path(u), before + 1, p)
    writers = descendants_of(p.pid, uid)  # found while it starts, killed at 6 MB
    assert writers, "no process of the recipient is writing"
    wait_size(sandbox.mbox_path(u), before + 6_000_000, p)
    for pid in writers:
        os.kill(pid, signal.SIGKILL)
    p.wait(timeout=60)
    assert os.path.getsize(sandbox.mbox_path(u)) == before
    assert check_box(sandbox, u) == ["first"]
    assert not os.path.exists(sandbox.mbox_path(u) + ".lock")
    assert len(sandbox.queue_files()) == 1
    assert sandbox.runq().returncode == 0
    assert check_box(sandbox, u) == ["first", "big"]
    assert sandbox.queue_files() == []


def test_killed_runner_rolled_back_by_next(sandbox, accounts):
    """kill -9 the queue runner itself (root, holding the locks) mid-write: its
    writer dies with it, its dot-lock says where the mailbox ended, and the
    next run - finding the lock's process gone, however fresh the lock's
    mtime - cuts the fragment away before delivering the message once."""
    u = accounts["u1"]
    before = queue_big(sandbox, u)
    p = subprocess.Popen(sandbox.cmd("runq"), stderr=subprocess.PIPE)
    box = sandbox.mbox_path(u)
    wait_size(box, before + 6_000_000, p)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=60)
    time.sleep(0.3)
    size = os.path.getsize(box)
    with open(box + ".lock") as f:
        lock = f.read().split()
    assert lock[0] == "postoffice" and int(lock[1]) == p.pid and int(lock[2]) == before, lock
    time.sleep(0.5)
    assert os.path.getsize(box) == size, "the writer outlived its runner"
    os.utime(box + ".lock")  # a fresh mtime does not keep a dead process's lock
    t0 = time.time()
    r = sandbox.runq("-v")
    assert r.returncode == 0, r.stderr
    assert time.time() - t0 < 30
    assert b"cut back" in r.stderr, r.stderr
    assert check_box(sandbox, u) == ["first", "big"]
    assert not os.path.exists(box + ".lock")
    assert sandbox.queue_files() == []


def test_root_mail_without_alias(sandbox, accounts):
    """A default Debian aliases file (postmaster: root): mail for postmaster
    and root lands in spool/root, created 0600 root, written unprivileged."""
    sandbox.set_aliases("postmaster: root\n")
    for rcpt in ("postmaster", "root"):
        r = sandbox.sendmail("-odq", "-i", "-f", accounts["u2"], rcpt, message=small(rcpt))
        assert r.returncode == 0, r.stderr
    r = sandbox.runq()
    assert r.returncode == 0, r.stderr
    assert sorted(check_box(sandbox, "root")) == ["postmaster", "root"]
    st = os.lstat(sandbox.mbox_path("root"))
    assert st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600
    assert sandbox.mbox(accounts["u2"]) == []  # no bounce
    assert sandbox.queue_files() == []


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory", "hardlink", "misowned"])
def test_planted_file_defers(sandbox, accounts, kind):
    """Something planted at the mailbox's path: the mail waits (4.2.0, the log
    says what to remove), nothing is followed or blocked on, no bounce; once
    the admin removes it the mail is delivered."""
    u1, u2 = accounts["u1"], accounts["u2"]
    pw2 = pwd.getpwnam(u2)
    box = sandbox.mbox_path(u1)
    target = os.path.join(sandbox.spool, "target")
    with open(target, "w") as f:
        f.write("u2's file\n")
    os.chown(target, pw2.pw_uid, pw2.pw_gid)
    if kind == "symlink":
        os.symlink(target, box)
    elif kind == "fifo":
        os.mkfifo(box)
    elif kind == "directory":
        os.mkdir(box)
    elif kind == "hardlink":
        os.link(target, box)
    else:
        with open(box, "w"):
            pass
        os.chown(box, pw2.pw_uid, pw2.pw_gid)
    r = sandbox.sendmail("-odq", "-i", "-f", u2, u1, message=small("planted"))
    assert r.returncode == 0, r.stderr
    r = sandbox.run("runq", "-v", timeout=30)
    assert r.returncode == 0, r.stderr
    assert b"remove it" in r.stderr and b"4.2.0" in r.stderr, r.stderr
    assert len(sandbox.queue_files()) == 1
    assert b"4.2.0" in sandbox.mailq().stdout
    with open(target) as f:
        assert f.read() == "u2's file\n"
    assert sandbox.mbox(u2) == []  # no bounce to the sender
    if kind == "directory":
        os.rmdir(box)
    else:
        os.unlink(box)
    assert sandbox.runq().returncode == 0
    assert check_box(sandbox, u1) == ["planted"]
    assert sandbox.queue_files() == []


def test_lock_holds_up_its_own_mailbox_only(sandbox, accounts):
    """The owner's own fresh dot-lock on one mailbox: that mailbox defers
    (4.2.0) after a few seconds - once per run, not once per batch of 8 - and
    the other mailbox of the same run is delivered; a lock planted by another
    user is removed, not waited for."""
    u1, u2 = accounts["u1"], accounts["u2"]
    pw1, pw2 = pwd.getpwnam(u1), pwd.getpwnam(u2)
    lock = sandbox.mbox_path(u1) + ".lock"
    fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchown(fd, pw1.pw_uid, pw1.pw_gid)
    os.close(fd)
    for u in [u1] * 20 + [u2]:
        assert sandbox.sendmail("-odq", "-i", u, message=small(u)).returncode == 0
    t0 = time.time()
    r = sandbox.run("runq", "-v", timeout=60)
    elapsed = time.time() - t0
    assert r.returncode == 0, r.stderr
    assert elapsed < 10, f"a queue run took {elapsed:.1f} s behind one lock"
    assert check_box(sandbox, u2) == [u2]
    assert sandbox.mbox(u1) == []
    assert sandbox.mailq().stdout.count(b"4.2.0") == 20
    assert os.path.exists(lock)  # the owner's lock is respected

    # the same lock made by somebody else: planted, removed with a warning
    os.chown(lock, pw2.pw_uid, pw2.pw_gid)
    t0 = time.time()
    r = sandbox.run("runq", "-v", timeout=60)
    assert time.time() - t0 < 5
    assert b"removing it" in r.stderr, r.stderr
    assert check_box(sandbox, u1) == [u1] * 20
    assert not os.path.exists(lock)
    assert sandbox.queue_files() == []


def test_root_mail_over_smtp(sandbox, accounts):
    """The daemon accepts RCPT TO:<root> (it used to say 550: needs an alias)
    and its delivery workers put the message in root's mailbox."""
    import smtplib
    sandbox.set_aliases("postmaster: root\n")
    sandbox.start_daemon()
    with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=30) as s:
        s.ehlo("client.example")
        refused = s.sendmail(f"{accounts['u2']}@{sandbox.hostname}", ["root", "postmaster"],
                             small("smtp"))
        assert refused == {}
    assert sandbox.wait_queue_empty(timeout=30)
    # one copy: both addresses name the same mailbox
    assert [m["Subject"] for m in sandbox.mbox("root")] == ["smtp"]
