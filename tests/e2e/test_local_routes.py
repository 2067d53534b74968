"""Aliases to mailboxes, programs, files and includes; .forward; newaliases."""
import os
import pwd
import subprocess
import time

import pytest

from conftest import IS_ROOT


def send(sandbox, rcpt, body="hello\n", sender=None):
    args = ["-i"]
    if sender:
        args += ["-f", sender]
    r = sandbox.sendmail(*args, rcpt, message=f"Subject: t\n\n{body}")
    assert r.returncode == 0, r.stderr
    return r


def test_newaliases_counts_and_database(sandbox, accounts):
    u = accounts["u1"]
    with open(sandbox.aliases, "w") as f:
        f.write(f"# comment\npostmaster: {u}\nteam: {u},\n   {accounts['u2']}\n")
    r = sandbox.run("newaliases")
    assert r.returncode == 0, r.stderr
    assert b"2 aliases" in r.stderr
    assert os.path.exists(sandbox.aliases + ".db")


def test_alias_to_users(sandbox, accounts):
    u1, u2 = accounts["u1"], accounts["u2"]
    sandbox.set_aliases(f"team: {u1}, {u2}\n")
    send(sandbox, "team")
    assert len(sandbox.wait_for_mail(u1)) == 1
    if u1 != u2:
        assert len(sandbox.wait_for_mail(u2)) == 1
    assert sandbox.wait_queue_empty()


def test_alias_case_insensitive_and_duplicates(sandbox, accounts):
    u = accounts["u1"]
    sandbox.set_aliases(f"Team: {u}, {u}\nother: team, {u}\n")
    send(sandbox, "OTHER")
    time.sleep(0.5)
    assert len(sandbox.wait_for_mail(u)) == 1  # delivered once


def test_alias_to_pipe(sandbox, accounts, tmp_path):
    out = os.path.join(sandbox.dir, "piped")
    script = os.path.join(sandbox.dir, "catch.sh")
    with open(script, "w") as f:
        f.write(f'#!/bin/sh\necho "rcpt=$RECIPIENT sender=$SENDER" > {out}.env\ncat > {out}\n')
    os.chmod(script, 0o755)
    os.chmod(sandbox.dir, 0o777)
    sandbox.set_aliases(f'pipe: "|{script} arg"\n')
    send(sandbox, "pipe", body="through a pipe\n")
    for _ in range(200):
        if os.path.exists(out) and os.path.getsize(out) > 0:
            break
        time.sleep(0.05)
    with open(out) as f:
        assert "through a pipe" in f.read()
    with open(out + ".env") as f:
        assert "rcpt=pipe" in f.read()


def test_alias_to_file_and_include(sandbox, accounts):
    os.chmod(sandbox.dir, 0o777)
    target = os.path.join(sandbox.dir, "archive")
    inc = os.path.join(sandbox.dir, "list.inc")
    with open(inc, "w") as f:
        f.write(f"# members\n{accounts['u1']}\n{target}\n")
    os.chmod(inc, 0o644)
    sandbox.set_aliases(f"list: :include:{inc}\n")
    send(sandbox, "list", body="to a list\n")
    assert len(sandbox.wait_for_mail(accounts["u1"])) == 1
    for _ in range(200):
        if os.path.exists(target):
            break
        time.sleep(0.05)
    import mailbox
    box = mailbox.mbox(target)
    assert len(box) == 1 and "to a list" in box[0].get_payload()


def test_alias_loop_does_not_hang(sandbox, accounts):
    u = accounts["u1"]
    sandbox.set_aliases(f"a: b\nb: a\n")
    send(sandbox, "a", sender=f"{u}@{sandbox.hostname}")
    # the loop is reported to the sender, never delivered in circles
    msgs = sandbox.wait_for_mail(u)
    assert len(msgs) == 1
    assert sandbox.wait_queue_empty()


def test_stale_database_warned(sandbox, accounts):
    sandbox.set_aliases(f"x: {accounts['u1']}\n")
    time.sleep(1.1)
    with open(sandbox.aliases, "a") as f:
        f.write("y: x\n")
    r = sandbox.run("runq", "-v")
    assert b"older than" in r.stderr and b"newaliases" in r.stderr
    r = sandbox.run("newaliases")
    assert r.returncode == 0
    r = sandbox.run("runq", "-v")
    assert b"older than" not in r.stderr


def _forward_user(accounts):
    if not IS_ROOT:
        pytest.skip(".forward tests need root (a test account with its own home)")
    return pwd.getpwnam(accounts["u2"])


def test_forward_program_tempfail_then_ok(sandbox, accounts):
    pw = _forward_user(accounts)
    home = pw.pw_dir
    flag = os.path.join(home, "fail-once")
    out = os.path.join(home, "got")
    for p in (flag, out):
        if os.path.exists(p):
            os.unlink(p)
    script = os.path.join(home, "deliver.sh")
    with open(script, "w") as f:
        f.write(f'#!/bin/sh\nif [ ! -e {flag} ]; then touch {flag}; exit 75; fi\ncat > {out}\n')
    os.chmod(script, 0o755)
    fwd = os.path.join(home, ".forward")
    with open(fwd, "w") as f:
        f.write(f'"|{script}"\n')
    for p in (script, fwd):
        os.chown(p, pw.pw_uid, pw.pw_gid)
    os.chmod(fwd, 0o644)
    try:
        send(sandbox, accounts["u2"], body="via forward\n")
        # first attempt defers (exit 75): still queued
        for _ in range(200):
            if os.path.exists(flag):
                break
            time.sleep(0.05)
        time.sleep(0.3)
        assert sandbox.queue_files()
        assert not os.path.exists(out)
        r = sandbox.runq("-v")
        assert os.path.exists(out), r.stderr
        with open(out) as f:
            assert "via forward" in f.read()
        assert sandbox.wait_queue_empty()
    finally:
        for p in (flag, out, script, fwd):
            if os.path.exists(p):
                os.unlink(p)


def test_forward_unsafe_ignored(sandbox, accounts):
    pw = _forward_user(accounts)
    fwd = os.path.join(pw.pw_dir, ".forward")
    with open(fwd, "w") as f:
        f.write(f"{accounts['u1']}\n")
    os.chown(fwd, pw.pw_uid, pw.pw_gid)
    os.chmod(fwd, 0o666)  # writable by others: must be ignored
    try:
        send(sandbox, accounts["u2"])
        assert len(sandbox.wait_for_mail(accounts["u2"])) == 1
    finally:
        os.unlink(fwd)


def test_forward_backslash_self(sandbox, accounts):
    pw = _forward_user(accounts)
    fwd = os.path.join(pw.pw_dir, ".forward")
    with open(fwd, "w") as f:
        f.write(f"\\{accounts['u2']}, {accounts['u1']}\n")
    os.chown(fwd, pw.pw_uid, pw.pw_gid)
    os.chmod(fwd, 0o644)
    try:
        send(sandbox, accounts["u2"])
        assert len(sandbox.wait_for_mail(accounts["u2"])) == 1
        assert len(sandbox.wait_for_mail(accounts["u1"])) == 1
    finally:
        os.unlink(fwd)


def test_domain_with_mx_pointing_here_is_local(sandbox, accounts):
    """A domain that is ours only because its MX points at this host is
    delivered locally by the queue runner (never bounced as a loop)."""
    from dnsserver import ZoneServer
    zone = {"hosted.test": [("MX", 10, "mail.hosted.test")],
            "mail.hosted.test": [("A", "127.0.0.1")]}
    z = ZoneServer(zone).start()
    try:
        sandbox.write_config(resolver=z.resolver, dns_timeout=1, dns_tries=1)
        u = accounts["u1"]
        r = sandbox.sendmail("-i", f"{u}@hosted.test", message="Subject: mx\n\nhi\n")
        assert r.returncode == 0, r.stderr
        msgs = sandbox.wait_for_mail(u)
        assert len(msgs) == 1 and msgs[0]["Subject"] == "mx"
        assert sandbox.wait_queue_empty()
    finally:
        z.stop()
