"""Bounces and .forward (issue 8): the remote's enhanced code in the DSN, the
double bounce that cannot be delivered (held, never dropped), bounces composed
by the unprivileged queue owner, a .forward re-read at each attempt, and a
.forward in an unsafe directory ignored."""
import email
import email.policy
import os
import pwd
import subprocess
import time

import pytest

from conftest import IS_ROOT
from smtpscript import ScriptServer


def reports(sandbox, user):
    """The delivery-status parts of the reports in user's mailbox."""
    out = []
    for m in sandbox.mbox(user):
        b = email.message_from_bytes(m.as_bytes(), policy=email.policy.default)
        if b.get_content_type() == "multipart/report":
            ds = [p for p in b.iter_parts() if p.get_content_type() == "message/delivery-status"]
            out.append(ds[0].as_string() if ds else "")
    return out


def need_root():
    if not IS_ROOT:
        pytest.skip("needs root (relay-host, accounts with their own homes)")


def test_dsn_keeps_remote_enhanced_code(sandbox, accounts):
    need_root()
    srv = ScriptServer(rcpt=b"550 5.1.1 <x@remote.test>: user unknown\r\n").start()
    try:
        u = accounts["u1"]
        sandbox.write_config(relay_host=f"[127.0.0.1]:{srv.port}")
        r = sandbox.sendmail("-i", "-odq", "-f", f"{u}@{sandbox.hostname}", "x@remote.test",
                             message="Subject: r\n\nhi\n")
        assert r.returncode == 0, r.stderr
        r = sandbox.runq()
        assert r.returncode == 0, r.stderr
        sandbox.wait_for_mail(u)
        rep = reports(sandbox, u)
        assert len(rep) == 1, rep
        assert "Status: 5.1.1" in rep[0]
        assert "Diagnostic-Code: smtp; 550 5.1.1 <x@remote.test>: user unknown" in rep[0], rep[0]
        assert sandbox.wait_queue_empty()
    finally:
        srv.stop()


def forward_user(accounts):
    need_root()
    return pwd.getpwnam(accounts["u2"])


def write_forward(pw, text):
    fwd = os.path.join(pw.pw_dir, ".forward")
    with open(fwd, "w") as f:
        f.write(text)
    os.chown(fwd, pw.pw_uid, pw.pw_gid)
    os.chmod(fwd, 0o644)
    return fwd


def test_forward_in_world_writable_home_ignored(sandbox, accounts):
    pw = forward_user(accounts)
    u1, u2 = accounts["u1"], accounts["u2"]
    fwd = write_forward(pw, f"{u1}\n")
    mode = os.stat(pw.pw_dir).st_mode & 0o7777
    os.chmod(pw.pw_dir, 0o1777)
    try:
        r = sandbox.sendmail("-i", "-odq", u2, message="Subject: w\n\nhi\n")
        assert r.returncode == 0, r.stderr
        r = sandbox.runq("-v")
        err = r.stderr.decode()
        assert f"ignoring {u2}'s .forward: directory {pw.pw_dir}" in err, err
        assert "group- or world-writable" in err, err
        # delivered as if there were no .forward
        assert len(sandbox.wait_for_mail(u2)) == 1
        assert sandbox.mbox(u1) == []
        # a safe home again: the .forward is honoured
        os.chmod(pw.pw_dir, 0o755)
        r = sandbox.sendmail("-i", u2, message="Subject: w2\n\nhi\n")
        assert r.returncode == 0, r.stderr
        assert len(sandbox.wait_for_mail(u1)) == 1
        assert len(sandbox.mbox(u2)) == 1
    finally:
        os.chmod(pw.pw_dir, mode)
        os.unlink(fwd)


def test_undeliverable_double_bounce_is_held(sandbox, accounts):
    """A report that can reach neither the sender nor the postmaster stays in
    the queue, held and shown by mailq, with a critical log line saying what
    to fix; once postmaster has a deliverable alias, the next run delivers it."""
    u = accounts["u1"]
    sandbox.set_aliases("postmaster: nosuch-admin-xyz\nMAILER-DAEMON: postmaster\n")
    # to an unknown user from an unknown local sender: the bounce fails too,
    # and the double bounce to the postmaster fails as well
    r = sandbox.sendmail("-i", "-odq", "-f", f"nosuch-sender@{sandbox.hostname}",
                         "nosuch-rcpt", message="Subject: lost\n\nhi\n")
    assert r.returncode == 0, r.stderr
    r = sandbox.runq("-v")
    err = r.stderr.decode()
    assert "double bounce held" in err, err
    assert "give postmaster a deliverable alias" in err, err
    assert "dropped" not in err, err
    q = sandbox.queued()
    assert len(q) == 1, q
    [(data, ctl)] = q.values()
    assert b"Subject: Undelivered Mail Returned to Sender" in data
    out = sandbox.mailq().stdout.decode()
    assert "held: undeliverable bounce" in out, out
    assert "1 request" in out, out
    # another run by hand: still held, never dropped, never a new report
    r = sandbox.runq("-v")
    assert "double bounce held" in r.stderr.decode()
    assert list(sandbox.queued()) == list(q)
    # the admin fixes the alias: delivered on the next run
    sandbox.set_aliases(f"postmaster: {u}\nMAILER-DAEMON: postmaster\n")
    r = sandbox.runq("-v")
    msgs = sandbox.wait_for_mail(u)
    assert len(msgs) == 1, r.stderr
    assert msgs[0]["Subject"] == "Undelivered Mail Returned to Sender"
    assert sandbox.wait_queue_empty()


def test_bounce_composed_by_queue_owner_not_root(sandbox, accounts):
    """strace shows who writes the report: every queue file the run creates
    (the bounce) is created by a process that has set its uid to user=
    first, never by root."""
    need_root()
    import re
    import shutil
    if not shutil.which("strace"):
        pytest.skip("strace is missing (apt-get install strace; tests/deps.txt)")
    u = accounts["u1"]
    spool_uid = pwd.getpwnam(accounts["spool"]).pw_uid
    r = sandbox.sendmail("-i", "-odq", "-f", f"{u}@{sandbox.hostname}", "nosuch-rcpt",
                         message="Subject: orig\n\nhi\n")
    assert r.returncode == 0, r.stderr
    trace = os.path.join(sandbox.dir, "strace.out")
    env = dict(os.environ)
    if "ASAN_OPTIONS" in env:  # LeakSanitizer cannot run under ptrace
        env["ASAN_OPTIONS"] += ":detect_leaks=0"
    r = subprocess.run(["strace", "-f", "-qq", "-o", trace, "-e",
                        "trace=setuid,setresuid,setreuid,openat", *sandbox.cmd("runq", "-v")],
                       capture_output=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert "bounce kind=failure, bounce_qid=" in r.stderr.decode(), r.stderr
    uid_of = {}   # pid -> uid it set last
    creators = []
    with open(trace) as f:
        for line in f:
            pid, _, call = line.strip().partition(" ")
            call = call.strip()
            m = re.match(r"set(?:res|re)?uid\((\d+)[,)].*= 0$", call)
            if m:
                uid_of[pid] = int(m.group(1))
            m = re.match(r'openat\([^"]*"([^"]*)".*O_CREAT', call)
            if m and re.search(r"(^|/)tf[0-9A-Za-z]+$", m.group(1)) and \
                    m.group(1).startswith(sandbox.queue):
                creators.append((pid, m.group(1)))
    assert creators, "no queue file created (the bounce): see " + open(trace).read()[-3000:]
    for pid, path in creators:
        assert uid_of.get(pid) == spool_uid, (pid, path, uid_of)
    rep = sandbox.wait_for_mail(u)
    assert len(rep) == 1 and rep[0]["Subject"] == "Undelivered Mail Returned to Sender"


def counting_script(path, counter):
    """A program that counts its runs in counter and always defers (75)."""
    with open(path, "w") as f:
        f.write(f"#!/bin/sh\necho run >> {counter}\ncat > /dev/null\nexit 75\n")
    os.chmod(path, 0o755)


def runs(counter):
    if not os.path.exists(counter):
        return 0
    with open(counter) as f:
        return len(f.readlines())


def test_removed_forward_program_not_run_again(sandbox, accounts):
    pw = forward_user(accounts)
    u2 = accounts["u2"]
    script = os.path.join(pw.pw_dir, "count.sh")
    counter = os.path.join(pw.pw_dir, "count.runs")
    for p in (counter,):
        if os.path.exists(p):
            os.unlink(p)
    counting_script(script, counter)
    os.chown(script, pw.pw_uid, pw.pw_gid)
    fwd = write_forward(pw, f'"|{script}"\n')
    try:
        r = sandbox.sendmail("-i", "-odq", u2, message="Subject: fwd\n\nhi\n")
        assert r.returncode == 0, r.stderr
        sandbox.runq("-v")
        assert runs(counter) == 1           # deferred: the program stays queued
        assert sandbox.queue_files()
        sandbox.runq("-v")
        assert runs(counter) == 2           # still in the .forward: retried
        os.unlink(fwd)                      # the user no longer wants it
        r = sandbox.runq("-v")
        err = r.stderr.decode()
        assert runs(counter) == 2, err      # never run again
        assert "is no longer a destination of" in err, err
        msgs = sandbox.wait_for_mail(u2)    # where the address goes now
        assert len(msgs) == 1 and msgs[0]["Subject"] == "fwd"
        assert sandbox.wait_queue_empty()
    finally:
        for p in (fwd, script, counter):
            if os.path.exists(p):
                os.unlink(p)


def test_removed_alias_program_not_run_again(sandbox, accounts):
    u1 = accounts["u1"]
    os.chmod(sandbox.dir, 0o777)
    script = os.path.join(sandbox.dir, "count.sh")
    counter = os.path.join(sandbox.dir, "count.runs")
    counting_script(script, counter)
    sandbox.set_aliases(f'postmaster: {u1}\nlist: "|{script}", {u1}\n')
    r = sandbox.sendmail("-i", "-odq", "list", message="Subject: al\n\nhi\n")
    assert r.returncode == 0, r.stderr
    sandbox.runq("-v")
    assert runs(counter) == 1
    assert len(sandbox.wait_for_mail(u1)) == 1
    # the admin takes the program out of the alias (and adds nobody new)
    sandbox.set_aliases(f"postmaster: {u1}\nlist: {u1}\n")
    r = sandbox.runq("-v")
    err = r.stderr.decode()
    assert runs(counter) == 1, err
    assert "is no longer a destination of" in err, err
    # u1 had it already: not delivered twice
    assert len(sandbox.mbox(u1)) == 1
    assert sandbox.wait_queue_empty()


def test_removed_forward_file_not_written(sandbox, accounts):
    """A file target from a .forward that failed for a while (its directory
    missing) is not written after the user took it out of the .forward."""
    pw = forward_user(accounts)
    u2 = accounts["u2"]
    d = os.path.join(pw.pw_dir, "later")
    target = os.path.join(d, "archive")
    fwd = write_forward(pw, f"\\{u2}, {target}\n")
    try:
        r = sandbox.sendmail("-i", "-odq", u2, message="Subject: file\n\nhi\n")
        assert r.returncode == 0, r.stderr
        r = sandbox.runq("-v")
        assert len(sandbox.wait_for_mail(u2)) == 1
        q = sandbox.queued()
        assert len(q) == 1, r.stderr      # the file target is deferred
        write_forward(pw, f"\\{u2}\n")    # the user drops the archive
        os.mkdir(d)
        os.chown(d, pw.pw_uid, pw.pw_gid)
        r = sandbox.runq("-v")
        err = r.stderr.decode()
        assert "is no longer a destination of" in err, err
        assert not os.path.exists(target)
        assert len(sandbox.mbox(u2)) == 1  # the mailbox had it already
        assert sandbox.wait_queue_empty()
    finally:
        os.unlink(fwd)
        if os.path.isdir(d):
            subprocess.run(["rm", "-rf", d])
