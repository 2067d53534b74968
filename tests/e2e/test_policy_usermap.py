"""usermap= (usermap(7)): personal addresses matched by pattern, resolved
through a personal aliases file (~/FILE, read as its owner under the
.forward rules), the matched account, or a literal address.  The accounts
are created by the test (useradd) and removed after it."""
import os
import pwd
import subprocess

import pytest

from smtpclient import bs

IS_ROOT = os.geteuid() == 0
pytestmark = pytest.mark.skipif(not IS_ROOT, reason="needs root: creates accounts")

USER = "poumap1"


@pytest.fixture
def umap(sandbox):
    home = os.path.join(sandbox.dir, "home", USER)
    subprocess.run(["userdel", USER], capture_output=True)
    r = subprocess.run(["useradd", "-M", "-d", home, "-s", "/usr/sbin/nologin", USER],
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    try:
        pw = pwd.getpwnam(USER)
        os.makedirs(home)
        os.chmod(os.path.dirname(home), 0o755)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        os.chmod(home, 0o755)
        sandbox.write_config(load=0)
        yield home, pw
    finally:
        subprocess.run(["userdel", USER], capture_output=True)


def write_alias(home, pw, text, mode=0o644, owner=None):
    path = os.path.join(home, ".alias")
    with open(path, "w") as f:
        f.write(text)
    os.chown(path, owner if owner is not None else pw.pw_uid, pw.pw_gid)
    os.chmod(path, mode)


def send(sandbox, rcpts):
    lines = ["EHLO c.example", "MAIL FROM:<a@elsewhere.example>"]
    lines += ["RCPT TO:<%s@%s>" % (r, sandbox.hostname) for r in rcpts]
    lines += ["DATA", "Subject: umap", "", "body", ".", "QUIT"]
    r = bs(sandbox, ("\r\n".join(lines) + "\r\n").encode())
    sandbox.runq()
    return r


def test_personal_file_case_insensitive_then_account(sandbox, umap):
    home, pw = umap
    u2 = sandbox.acc["u2"]
    write_alias(home, pw, "# my shop addresses\nsath-poumap1: %s\nshop-poumap1: \\poumap1\n" % u2)
    sandbox.write_config(usermap="*-~:~/.alias,~")
    r = send(sandbox, ["SATH-POUMAP1", "other-poumap1"])
    assert [c for c, _ in r[3:6]] == [250, 250, 354], r
    assert len(sandbox.wait_for_mail(u2)) == 1             # from ~/.alias, any case
    assert len(sandbox.wait_for_mail(USER)) == 1           # not in it: the '~' target


def test_unmatched_names_refused(sandbox, umap):
    sandbox.write_config(usermap="*-~:~")
    r = bs(sandbox, b"EHLO c\r\nMAIL FROM:<a@elsewhere.example>\r\n"
                    b"RCPT TO:<x-nosuchuser@%s>\r\nRCPT TO:<x-root@%s>\r\n"
                    b"RCPT TO:<x-poumap1@%s>\r\nQUIT\r\n" % ((sandbox.hostname.encode(),) * 3))
    assert [c for c, _ in r[3:6]] == [550, 550, 250], r


def test_unsafe_personal_file_ignored(sandbox, umap):
    home, pw = umap
    u2 = sandbox.acc["u2"]
    sandbox.write_config(usermap="*-~:~/.alias,~")
    write_alias(home, pw, "sath-poumap1: %s\n" % u2, mode=0o666)  # world-writable
    send(sandbox, ["sath-poumap1"])
    assert len(sandbox.wait_for_mail(USER)) == 1 and sandbox.mbox(u2) == []
    write_alias(home, pw, "sath-poumap1: %s\n" % u2, owner=pwd.getpwnam(u2).pw_uid)
    send(sandbox, ["sath-poumap1"])                         # someone else's file
    assert len(sandbox.wait_for_mail(USER, 2)) == 2 and sandbox.mbox(u2) == []
    write_alias(home, pw, "sath-poumap1: %s\n" % u2)        # now a good one
    send(sandbox, ["sath-poumap1"])
    assert len(sandbox.wait_for_mail(u2)) == 1


def test_no_target_bounces(sandbox, umap):
    home, pw = umap
    write_alias(home, pw, "shop-poumap1: poumap1\n")
    sandbox.write_config(usermap="*-~:~/.alias")
    r = send(sandbox, ["junk-poumap1"])
    assert r[5][0] == 250, r  # taken: the personal file is read at delivery
    assert sandbox.mbox(USER) == []
    # bounced; the sender's domain does not exist, so the postmaster gets it
    msgs = sandbox.wait_for_mail(sandbox.acc["u1"])
    assert msgs and "junk-poumap1" in msgs[0].as_string()
    assert "5.1.1" in msgs[0].as_string()


def test_literal_target_and_first_match_wins(sandbox, umap):
    u1, u2 = sandbox.acc["u1"], sandbox.acc["u2"]
    sandbox.write_config(usermap=["list-*:%s" % u1, "*-*:%s" % u2])
    send(sandbox, ["list-anything", "other-thing"])
    assert len(sandbox.wait_for_mail(u1)) == 1
    assert len(sandbox.wait_for_mail(u2)) == 1


def test_aliases_and_accounts_come_first(sandbox, umap):
    u1, u2 = sandbox.acc["u1"], sandbox.acc["u2"]
    sandbox.set_aliases("postmaster: %s\nsales-team: %s\n" % (u1, u1))
    sandbox.write_config(usermap="*:%s" % u2)
    send(sandbox, ["sales-team", USER])
    assert len(sandbox.wait_for_mail(u1)) == 1 and len(sandbox.wait_for_mail(USER)) == 1
    assert sandbox.mbox(u2) == []


@pytest.mark.parametrize("bad", ["nopattern", ":x", "~-~:x", "*-x:~", "*:~/.alias", "a:"])
def test_bad_usermap_refused(sandbox, bad):
    sandbox.write_config(usermap=bad)
    r = sandbox.run("postoffice", "-bs", input=b"QUIT\r\n")
    assert r.returncode != 0 and b"usermap" in r.stderr, (bad, r)


def test_debug_shows_usermaps(sandbox, umap):
    sandbox.write_config(usermap="*-~:~/.alias,~", debug=True)
    r = bs(sandbox, b"DEBUG\r\nQUIT\r\n")
    text = b"\n".join(l for _, ls in r for l in ls)
    assert b"usermap=*-~:~/.alias,~" in text, text


def test_programs_in_personal_file_run_as_the_account(sandbox, umap):
    home, pw = umap
    out = os.path.join(home, "piped")
    write_alias(home, pw, 'pipe-poumap1: "|/usr/bin/id -u > %s"\n' % out)
    sandbox.write_config(usermap="*-~:~/.alias")
    send(sandbox, ["pipe-poumap1"])
    assert open(out).read().strip() == str(pw.pw_uid)  # never user= or root
