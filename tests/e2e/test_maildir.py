"""mailbox= (postoffice.cf(5)): local mail into an mbox from a template or a
maildir (a template ending in "/"), and .forward/alias targets ending in "/".
Read back with python's mailbox module and with dovecot's doveadm; a symlinked
maildir is refused, a killed writer leaves nothing in new/."""
import mailbox
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import time
import uuid

import pytest

from conftest import IS_ROOT

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="needs root: maildirs of several "
                                "accounts, written as their owners")

NAME_RE = re.compile(r"^(\d+)\.M(\d+)P(\d+)Q(\d+)\.(.+),S=(\d+)$")


def msg(token, body="hello"):
    return f"Subject: {token}\n\n{body} {token}\n"


def send(sb, rcpt, token, sender=None, body="hello"):
    args = ["-odq", "-i"]
    if sender:
        args += ["-f", sender]
    r = sb.sendmail(*args, rcpt, message=msg(token, body))
    assert r.returncode == 0, r.stderr


def homes(sb, *users):
    """sandbox/homes/USER, owned by each user: mailbox templates point here
    (never the accounts' real homes, which other tests share)."""
    base = os.path.join(sb.dir, "homes")
    os.makedirs(base, exist_ok=True)
    for u in users:
        pw = pwd.getpwnam(u)
        d = os.path.join(base, u)
        os.makedirs(d, exist_ok=True)
        os.chown(d, pw.pw_uid, pw.pw_gid)
    return base


def subjects_md(path):
    box = mailbox.Maildir(path, factory=None, create=False)
    return sorted(m["Subject"] for m in box)


def test_maildir_template(sandbox, accounts):
    """mailbox=.../%u/Maildir/: made 0700 by the owner, files named
    time.M<usec>P<pid>Q<n>.host,S=<size> in new/, Return-Path and
    Delivered-To first, no From_ line, LF line ends."""
    u1, u2 = accounts["u1"], accounts["u2"]
    base = homes(sandbox, u1)
    sandbox.write_config(mailbox=f"{base}/%u/Maildir/")
    for t in ("one", "two", "three"):
        send(sandbox, u1, t, sender=u2)
    r = sandbox.runq()
    assert r.returncode == 0, r.stderr
    md = os.path.join(base, u1, "Maildir")
    pw = pwd.getpwnam(u1)
    for d in ("", "tmp", "new", "cur"):
        st = os.lstat(os.path.join(md, d))
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700, d
        assert st.st_uid == pw.pw_uid, d
    assert os.listdir(os.path.join(md, "tmp")) == []
    names = os.listdir(os.path.join(md, "new"))
    assert len(names) == 3
    for n in names:
        m = NAME_RE.match(n)
        assert m, n
        full = os.path.join(md, "new", n)
        assert int(m.group(6)) == os.path.getsize(full)
        assert os.lstat(full).st_uid == pw.pw_uid
        assert stat.S_IMODE(os.lstat(full).st_mode) == 0o600
        data = open(full, "rb").read()
        assert data.startswith(b"Return-Path: <%s@" % u2.encode()), data[:80]
        assert b"\nDelivered-To: " in data and not data.startswith(b"From ")
        assert b"\r\n" not in data
    assert len({NAME_RE.match(n).group(1, 2, 3, 4) for n in names}) == 3  # unique
    assert subjects_md(md) == ["one", "three", "two"]
    assert sandbox.queue_files() == []
    assert not os.path.exists(sandbox.mbox_path(u1))


def test_maildir_in_spool(sandbox, accounts):
    """mailbox=SPOOL/%u/ in a root-owned spool: root makes the one missing
    directory and gives it to the user; the user's process does the rest."""
    u1 = accounts["u1"]
    sandbox.write_config(mailbox=f"{sandbox.spool}/%u/")
    send(sandbox, u1, "spooled")
    assert sandbox.runq().returncode == 0
    md = os.path.join(sandbox.spool, u1)
    st = os.lstat(md)
    assert st.st_uid == pwd.getpwnam(u1).pw_uid and stat.S_IMODE(st.st_mode) == 0o700
    assert subjects_md(md) == ["spooled"]


def test_mbox_templates(sandbox, accounts):
    """An mbox template in a root-owned directory (opened and locked by root,
    as the spool) and one in the user's own directory (opened by the user)."""
    u1, u2 = accounts["u1"], accounts["u2"]
    other = os.path.join(sandbox.dir, "boxes")
    os.makedirs(other)
    base = homes(sandbox, u1, u2)
    sandbox.write_config(mailbox=f"{other}/%u")
    send(sandbox, u1, "root-dir")
    assert sandbox.runq().returncode == 0
    box = mailbox.mbox(os.path.join(other, u1), create=False)
    assert [m["Subject"] for m in box] == ["root-dir"]
    assert os.lstat(os.path.join(other, u1)).st_uid == pwd.getpwnam(u1).pw_uid
    sandbox.write_config(mailbox=f"{base}/%u/mbox")
    send(sandbox, u2, "user-dir")
    send(sandbox, u2, "user-dir2", body="From the start of a line")
    assert sandbox.runq().returncode == 0
    path = os.path.join(base, u2, "mbox")
    box = mailbox.mbox(path, create=False)
    # one run delivers both, in queue order (queue ids need not sort by time)
    assert sorted(m["Subject"] for m in box) == ["user-dir", "user-dir2"]
    assert os.lstat(path).st_uid == pwd.getpwnam(u2).pw_uid
    assert not os.path.exists(path + ".lock")
    assert sandbox.queue_files() == []


def test_home_template(sandbox, accounts):
    """~/ expands to the account's home directory."""
    u1 = accounts["u1"]
    pw = pwd.getpwnam(u1)
    name = "Maildir-po-%s" % uuid.uuid4().hex[:8]
    md = os.path.join(pw.pw_dir, name)
    sandbox.write_config(mailbox=f"~/{name}/")
    try:
        send(sandbox, u1, "home")
        assert sandbox.runq().returncode == 0
        assert subjects_md(md) == ["home"]
    finally:
        shutil.rmtree(md, ignore_errors=True)


@pytest.mark.parametrize("kind", ["symlink", "misowned"])
def test_planted_maildir_defers(sandbox, accounts, kind):
    """A symlinked or foreign-owned maildir: the mail waits (4.2.0), nothing
    is written through it, no bounce; delivered once it is removed."""
    u1, u2 = accounts["u1"], accounts["u2"]
    base = homes(sandbox, u1, u2)
    md = os.path.join(base, u1, "Maildir")
    target = os.path.join(base, u2, "target")
    pw2 = pwd.getpwnam(u2)
    for d in ("", "tmp", "new", "cur"):
        os.makedirs(os.path.join(target, d), exist_ok=True)
        os.chown(os.path.join(target, d), pw2.pw_uid, pw2.pw_gid)
    if kind == "symlink":
        os.symlink(target, md)
    else:
        os.rename(target, md)
    sandbox.write_config(mailbox=f"{base}/%u/Maildir/")
    send(sandbox, u1, "planted", sender=u2)
    r = sandbox.run("runq", "-v", timeout=30)
    assert r.returncode == 0, r.stderr
    assert b"4.2.0" in r.stderr, r.stderr
    assert (b"symbolic link" if kind == "symlink" else b"belongs to uid") in r.stderr
    assert len(sandbox.queue_files()) == 1
    where = target if kind == "symlink" else md
    assert all(os.listdir(os.path.join(where, d)) == [] for d in ("tmp", "new", "cur"))
    assert sandbox.mbox(u2) == []
    if kind == "symlink":
        os.unlink(md)
    else:
        shutil.rmtree(md)
    assert sandbox.runq().returncode == 0
    assert subjects_md(md) == ["planted"]


def test_forward_and_alias_maildir_targets(sandbox, accounts):
    """A .forward line and an alias target ending in "/" are maildirs,
    written as the .forward's owner and as user= (aliases)."""
    u1 = accounts["u1"]
    spool_user = accounts["spool"]
    pw1 = pwd.getpwnam(u1)
    base = homes(sandbox, u1, spool_user)
    fwd_md = os.path.join(base, u1, "fwd-md/")
    alias_md = os.path.join(base, spool_user, "alias-md/")
    sandbox.set_aliases(f"postmaster: {u1}\nlist: {alias_md}\n")
    fwd = os.path.join(pw1.pw_dir, ".forward")
    had = os.path.exists(fwd)
    if had:
        pytest.skip(f"{fwd} exists already (another test's?)")
    try:
        with open(fwd, "w") as f:
            f.write(fwd_md + "\n")
        os.chown(fwd, pw1.pw_uid, pw1.pw_gid)
        send(sandbox, u1, "forwarded")
        send(sandbox, "list", "aliased")
        r = sandbox.runq()
        assert r.returncode == 0, r.stderr
        assert sandbox.queue_files() == [], sandbox.mailq().stdout
        assert subjects_md(fwd_md) == ["forwarded"]
        assert os.lstat(fwd_md).st_uid == pw1.pw_uid
        assert subjects_md(alias_md) == ["aliased"]
        assert os.lstat(alias_md).st_uid == pwd.getpwnam(spool_user).pw_uid
    finally:
        os.unlink(fwd)


def wait_for(pred, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        assert proc.poll() is None, "the queue run ended too early"
        time.sleep(0.002)
    raise AssertionError("timed out")


def test_killed_writer_leaves_nothing_in_new(sandbox, accounts):
    """kill -9 the writer half-way through a 60 MB message: new/ stays empty
    (only tmp/ holds the fragment); the next run delivers it once."""
    u1 = accounts["u1"]
    base = homes(sandbox, u1)
    md = os.path.join(base, u1, "Maildir")
    sandbox.write_config(mailbox=f"{base}/%u/Maildir/", size="100m")
    body = "y" * 99 + "\n"
    big = "Subject: big\n\nBEGIN\n" + body * 600000 + "END\n"
    r = sandbox.sendmail("-odq", "-i", u1, message=big)
    assert r.returncode == 0, r.stderr
    p = subprocess.Popen(sandbox.cmd("runq"), stderr=subprocess.PIPE,
                         start_new_session=True)
    tmp = os.path.join(md, "tmp")

    def tmp_size():
        try:
            return sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp))
        except OSError:
            return 0
    wait_for(lambda: tmp_size() > 6_000_000, p)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(timeout=60)
    assert os.listdir(os.path.join(md, "new")) == []
    assert len(os.listdir(tmp)) == 1
    assert len(sandbox.queue_files()) == 1
    r = sandbox.runq()
    assert r.returncode == 0, r.stderr
    box = mailbox.Maildir(md, factory=None, create=False)
    msgs = list(box)
    assert len(msgs) == 1 and msgs[0].get_payload().endswith("END\n")
    assert sandbox.queue_files() == []


DOVECOT_CONF = """\
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols =
ssl = no
first_valid_uid = 1
passdb {{
  driver = static
  args = nopassword=y
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={home}
}}
mail_location = maildir:{maildir}:INDEX=MEMORY
"""


def test_dovecot_reads_maildir(sandbox, accounts, tmp_path):
    doveadm = shutil.which("doveadm") or "/usr/bin/doveadm"
    if not os.path.exists(doveadm):
        pytest.skip("dovecot-core is not installed (./bootstrap.sh installs it)")
    u1 = accounts["u1"]
    pw = pwd.getpwnam(u1)
    base = homes(sandbox, u1)
    md = os.path.join(base, u1, "Maildir")
    sandbox.write_config(mailbox=f"{base}/%u/Maildir/", subaddress_folder=True)
    sandbox.set_aliases(f"postmaster: {u1}\n{u1}+work: {u1}\n")
    send(sandbox, u1, "for dovecot")
    send(sandbox, u1, "escaped", body="From the start of a line")
    send(sandbox, f"{u1}+work", "in a folder")
    assert sandbox.runq().returncode == 0
    dv = tmp_path / "dovecot"
    for d in ("run", "state"):
        (dv / d).mkdir(parents=True)
    os.chmod(tmp_path, 0o755)
    conf = dv / "dovecot.conf"
    conf.write_text(DOVECOT_CONF.format(base=dv, uid=pw.pw_uid, gid=pw.pw_gid,
                                        home=os.path.join(base, u1), maildir=md))
    # the master runs the auth service doveadm asks (no protocols: no listener)
    dovecot = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", str(conf)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 20
        while not (dv / "run" / "auth-userdb").exists() and time.time() < deadline:
            assert dovecot.poll() is None, dovecot.stderr.read()
            time.sleep(0.1)
        r = subprocess.run([doveadm, "-c", str(conf), "fetch", "-u", u1,
                            "hdr.subject body size.physical", "mailbox", "INBOX", "all"],
                           capture_output=True, timeout=60)
        # the subaddress folder is a dovecot mailbox "work"
        folder = subprocess.run([doveadm, "-c", str(conf), "fetch", "-u", u1, "hdr.subject",
                                 "mailbox", "work", "all"], capture_output=True, timeout=60)
        assert folder.returncode == 0, folder.stderr
        assert folder.stdout.decode().count("hdr.subject: in a folder") == 1, folder.stdout
    finally:
        dovecot.terminate()
        dovecot.wait(timeout=20)
    log = dv / "dovecot.log"
    assert r.returncode == 0, (r.stdout, r.stderr, log.read_text() if log.exists() else "")
    out = r.stdout.decode()
    assert "for dovecot" in out and "escaped" in out and "From the start of a line" in out
    assert out.count("hdr.subject:") == 2, out
    # dovecot's size is the file's (LF line ends): the S= of the name
    sizes = sorted(int(x) for x in re.findall(r"size.physical: (\d+)", out))
    names = os.listdir(os.path.join(md, "new")) + os.listdir(os.path.join(md, "cur"))
    assert sizes == sorted(int(NAME_RE.match(n.split(":")[0]).group(6)) for n in names)


# ---- mailbox limits ----

def mbox_size(sb, user):
    p = sb.mbox_path(user)
    return os.path.getsize(p) if os.path.exists(p) else 0


def md_size(md):
    return sum(os.path.getsize(os.path.join(md, d, f))
               for d in ("new", "cur") for f in os.listdir(os.path.join(md, d)))


def bounces_to(sb, user, md=None):
    if md and not os.path.isdir(md):
        return []
    msgs = list(mailbox.Maildir(md, factory=None, create=False)) if md else sb.mbox(user)
    return [m for m in msgs if "5.2.2" in m.as_string()]


@pytest.mark.parametrize("kind", ["mbox", "maildir"])
def test_limit_at_delivery(sandbox, accounts, kind):
    """mailbox-limit=: a message that leaves the mailbox exactly at the limit
    is delivered, one byte more is deferred 4.2.2 (the message waits), and
    with mailbox-limit-action=bounce it is bounced 5.2.2 at once."""
    u1, u2 = accounts["u1"], accounts["u2"]
    sandbox.set_aliases(f"postmaster: {u2}\n")  # the bounce's copy must fit
    md2 = None
    if kind == "maildir":
        base = homes(sandbox, u1, u2)
        md = os.path.join(base, u1, "Maildir")
        md2 = os.path.join(base, u2, "Maildir")
        sandbox.write_config(mailbox=f"{base}/%u/Maildir/")
        size = lambda: md_size(md)  # noqa: E731
    else:
        size = lambda: mbox_size(sandbox, u1)  # noqa: E731
    send(sandbox, u1, "aaaa", sender=u2)
    assert sandbox.runq().returncode == 0
    d = size()
    assert d > 0
    # the same message again is exactly d bytes more: fits a limit of 2d;
    # the sender's mailbox (bounces) has none: "0" in mailbox-limits=
    limits = os.path.join(sandbox.dir, "limits")
    with open(limits, "w") as f:
        f.write(f"# the bounces' recipient\n{u2}  0\n")
    sandbox.write_config(mailbox_limit=str(2 * d), mailbox_limits=limits)
    send(sandbox, u1, "bbbb", sender=u2)
    assert sandbox.runq().returncode == 0
    assert sandbox.queue_files() == [], sandbox.mailq().stdout
    assert size() == 2 * d
    # a limit one byte smaller than what the next one needs: deferred
    sandbox.write_config(mailbox_limit=str(3 * d - 1))
    send(sandbox, u1, "cccc", sender=u2)
    r = sandbox.run("runq", "-v")
    assert r.returncode == 0, r.stderr
    assert len(sandbox.queue_files()) == 1
    assert b"4.2.2" in sandbox.mailq().stdout, sandbox.mailq().stdout
    assert size() == 2 * d
    if kind == "maildir":
        assert os.listdir(os.path.join(md, "tmp")) == []
    assert bounces_to(sandbox, u2, md2) == []
    # exactly at the limit again: the waiting message goes
    sandbox.write_config(mailbox_limit=str(3 * d))
    assert sandbox.runq().returncode == 0
    assert sandbox.queue_files() == []
    assert size() == 3 * d
    # bounce at once
    sandbox.write_config(mailbox_limit=str(4 * d - 1), mailbox_limit_action="bounce")
    send(sandbox, u1, "dddd", sender=u2)
    assert sandbox.runq().returncode == 0
    sandbox.runq()
    assert sandbox.queue_files() == [], sandbox.mailq().stdout
    assert size() == 3 * d
    b = bounces_to(sandbox, u2, md2)
    assert len(b) >= 1 and "mailbox" in b[0].as_string() and "full" in b[0].as_string()


def rcpt_reply(sb, rcpt, size):
    import smtplib
    with smtplib.SMTP("127.0.0.1", sb.port, timeout=30) as c:
        c.ehlo("client.example")
        code, _ = c.mail("someone@example.org", options=[f"SIZE={size}"])
        assert code == 250
        return c.rcpt(rcpt)


def test_limit_at_rcpt(sandbox, accounts):
    """A client that declares SIZE= hears 552 5.2.2 at RCPT when the message
    cannot fit a local account's mbox: exactly at the limit is accepted, one
    byte over refused.  The limits file is read again when it changes; an
    alias and a maildir are accepted (checked at delivery)."""
    u1, u2 = accounts["u1"], accounts["u2"]
    send(sandbox, u1, "first")
    assert sandbox.runq().returncode == 0
    used = mbox_size(sandbox, u1)
    limits = os.path.join(sandbox.dir, "limits")
    with open(limits, "w") as f:
        f.write(f"{u1}@{sandbox.hostname} {used + 1000}\n")
    os.chmod(limits, 0o644)
    sandbox.write_config(mailbox_limits=limits)
    sandbox.set_aliases(f"postmaster: {u1}\nlist: {u1}\n")
    sandbox.start_daemon()
    rcpt = f"{u1}@{sandbox.hostname}"
    assert rcpt_reply(sandbox, rcpt, 1000)[0] == 250
    code, text = rcpt_reply(sandbox, rcpt, 1001)
    assert code == 552 and text.startswith(b"5.2.2"), (code, text)
    assert b"mailbox full" in text
    # an alias may lead elsewhere: not refused here
    assert rcpt_reply(sandbox, f"list@{sandbox.hostname}", 1001)[0] == 250
    # another account has no limit; no SIZE= at all is never refused here
    assert rcpt_reply(sandbox, f"{u2}@{sandbox.hostname}", 10**7)[0] == 250
    with open(limits, "w") as f:
        f.write(f"{u1} {used + 2000}\n")
    assert rcpt_reply(sandbox, rcpt, 2000)[0] == 250
    assert rcpt_reply(sandbox, rcpt, 2001)[0] == 552


def test_limits_file_errors(sandbox, accounts):
    """A limits file with a bad line or writable by everybody defers the
    delivery (4.3.0, the line named) rather than guessing."""
    u1 = accounts["u1"]
    limits = os.path.join(sandbox.dir, "limits")
    with open(limits, "w") as f:
        f.write(f"# comment\n\n{u1} lots\n")
    os.chmod(limits, 0o644)
    sandbox.write_config(mailbox_limits=limits)
    send(sandbox, u1, "x")
    r = sandbox.run("runq", "-v")
    assert b"limits line 3" in r.stderr and b"4.3.0" in r.stderr, r.stderr
    assert len(sandbox.queue_files()) == 1
    with open(limits, "w") as f:
        f.write(f"{u1} 10m  # ten megabytes\n")
    os.chmod(limits, 0o666)
    r = sandbox.run("runq", "-v")
    assert b"only its owner may write" in r.stderr, r.stderr
    os.chmod(limits, 0o644)
    assert sandbox.runq().returncode == 0
    assert sandbox.queue_files() == []
    assert [m["Subject"] for m in sandbox.mbox(u1)] == ["x"]


def test_subaddress_folders(sandbox, accounts):
    """subaddress-folder=yes: mail whose Delivered-To is user+tag goes into
    the Maildir++ folder .tag (made with maildirfolder); a tag starting with
    "." is no folder (INBOX); without the option everything is INBOX.  Read
    with python's Maildir folders and with doveadm's folder list."""
    u1 = accounts["u1"]
    base = homes(sandbox, u1)
    md = os.path.join(base, u1, "Maildir")
    sandbox.set_aliases(f"postmaster: {u1}\n{u1}+work: {u1}\n{u1}+.hidden: {u1}\n"
                        f"{u1}+news: {u1}\n")
    sandbox.write_config(mailbox=f"{base}/%u/Maildir/", subaddress_folder=True)
    send(sandbox, f"{u1}+work", "for work")
    send(sandbox, f"{u1}+work", "more work")
    send(sandbox, f"{u1}+.hidden", "dot tag")
    send(sandbox, u1, "plain")
    r = sandbox.runq()
    assert r.returncode == 0, r.stderr
    assert sandbox.queue_files() == [], sandbox.mailq().stdout
    box = mailbox.Maildir(md, factory=None, create=False)
    assert box.list_folders() == ["work"]
    assert sorted(m["Subject"] for m in box.get_folder("work")) == ["for work", "more work"]
    assert sorted(m["Subject"] for m in box) == ["dot tag", "plain"]
    work = os.path.join(md, ".work")
    assert os.path.isfile(os.path.join(work, "maildirfolder"))
    pw = pwd.getpwnam(u1)
    for d in ("", "tmp", "new", "cur"):
        st = os.lstat(os.path.join(work, d))
        assert st.st_uid == pw.pw_uid and stat.S_IMODE(st.st_mode) == 0o700
    for n in os.listdir(os.path.join(work, "new")):
        data = open(os.path.join(work, "new", n), "rb").read()
        assert f"Delivered-To: {u1}+work".encode() in data
    # the option off: the tag is ignored
    sandbox.write_config(subaddress_folder=False)
    send(sandbox, f"{u1}+news", "news")
    assert sandbox.runq().returncode == 0
    assert box.list_folders() == ["work"]
    assert "news" in [m["Subject"] for m in mailbox.Maildir(md, factory=None, create=False)]


def test_maildirsize_counts_folders(sandbox, accounts):
    """The Maildir++ count: made by one scan when missing (folders
    included), then one line appended per delivery; the limit counts it."""
    u1 = accounts["u1"]
    base = homes(sandbox, u1)
    md = os.path.join(base, u1, "Maildir")
    sandbox.set_aliases(f"postmaster: {u1}\n{u1}+work: {u1}\n")
    sandbox.write_config(mailbox=f"{base}/%u/Maildir/", subaddress_folder=True)
    send(sandbox, f"{u1}+work", "w1")
    send(sandbox, u1, "i1")
    assert sandbox.runq().returncode == 0
    assert not os.path.exists(os.path.join(md, "maildirsize"))  # no limit: not made
    total = md_size(md) + md_size(os.path.join(md, ".work"))
    sandbox.write_config(mailbox_limit="10m")
    send(sandbox, u1, "i2")
    assert sandbox.runq().returncode == 0
    lines = open(os.path.join(md, "maildirsize")).read().splitlines()
    assert lines[0] == "10000000S"
    assert lines[1] == f"{total} 2"
    added = md_size(md) + md_size(os.path.join(md, ".work")) - total
    assert lines[2:] == [f"{added} 1"]


def test_virtual_user_limit(sandbox, accounts):
    """A virtual domain's limits file (VHOSTDIR/DOMAIN/limits, vhosts(7))
    limits its users' mailboxes; a user@domain line of mailbox-limits= is
    next; the domain's file wins."""
    from test_vhosts import VHosts
    vh = VHosts(sandbox)
    vh.domains("admin:one.example:1\n")
    vh.passwd("one.example", "joe")
    vh.fix_perms()
    def go(token):
        r = sandbox.sendmail("-odq", "-i", "-f", accounts["u2"], "joe@one.example",
                             message=msg(token))
        assert r.returncode == 0, r.stderr
        return sandbox.run("runq", "-v")
    go("aaaa")
    d = os.path.getsize(vh.mbox_path("one.example", "joe"))
    vh.put("one.example", "limits", "# joe's\nJoe %d\n" % (2 * d))
    vh.fix_perms()
    go("bbbb")
    assert sandbox.queue_files() == []
    r = go("cccc")
    assert b"4.2.2" in r.stderr and b"full" in r.stderr, r.stderr
    assert len(sandbox.queue_files()) == 1
    # the system file's user@domain line is not used while the domain's names joe
    limits = os.path.join(sandbox.dir, "limits")
    with open(limits, "w") as f:
        f.write("joe 0\njoe@one.example %d\n" % (3 * d))
    os.chmod(limits, 0o644)
    sandbox.write_config(mailbox_limits=limits)
    sandbox.runq()
    assert len(sandbox.queue_files()) == 1
    os.unlink(os.path.join(vh.dir, "one.example", "limits"))
    sandbox.runq()
    assert sandbox.queue_files() == []
    assert [m["Subject"] for m in vh.mbox("one.example", "joe")] == ["aaaa", "bbbb", "cccc"]


def test_virtual_killed_writer_cut_back_by_next(sandbox, accounts):
    """Root opens nothing in VSPOOL/DOMAIN (vuser's): the writer, as vuser,
    locks the mailbox itself.  Killed half-way, its dot-lock says where the
    mailbox ended, and the next delivery cuts the fragment away before
    delivering the message once."""
    from test_vhosts import VHosts
    from test_mailbox_safety import big_message, check_box, descendants_of, small
    vh = VHosts(sandbox)
    vh.domains("admin:one.example:1\n")
    vh.passwd("one.example", "joe")
    vh.fix_perms()
    sandbox.write_config(size="100m")
    r = sandbox.sendmail("-odq", "-i", "joe@one.example", message=small("first"))
    assert r.returncode == 0, r.stderr
    assert sandbox.runq().returncode == 0
    box = vh.mbox_path("one.example", "joe")
    before = os.path.getsize(box)
    r = sandbox.sendmail("-odq", "-i", "joe@one.example", message=big_message("big"))
    assert r.returncode == 0, r.stderr
    p = subprocess.Popen(sandbox.cmd("runq"), stderr=subprocess.PIPE)
    vuid = pwd.getpwnam(vh.vuser).pw_uid
    wait_for(lambda: os.path.getsize(box) > before, p)
    writers = descendants_of(p.pid, vuid)
    assert writers, "no process of vuser= is writing"
    wait_for(lambda: os.path.getsize(box) > before + 6_000_000, p)
    for pid in writers:
        os.kill(pid, signal.SIGKILL)
    p.wait(timeout=60)
    assert os.path.exists(box + ".lock")
    assert len(sandbox.queue_files()) == 1
    r = sandbox.run("runq", "-v")
    assert r.returncode == 0, r.stderr
    assert b"cut back" in r.stderr, r.stderr

    class Box:  # check_box reads sandbox.mbox(user)
        def mbox(self, _):
            return vh.mbox("one.example", "joe")
    assert check_box(Box(), "joe") == ["first", "big"]
    assert not os.path.exists(box + ".lock")
    assert sandbox.queue_files() == []


def test_planted_mbox_in_home_defers(sandbox, accounts):
    """An mbox template in the user's own directory (opened by the user's
    process): a symlink planted there is refused (4.2.0), not followed."""
    u1, u2 = accounts["u1"], accounts["u2"]
    base = homes(sandbox, u1, u2)
    target = os.path.join(base, u2, "target")
    with open(target, "w") as f:
        f.write("u2's file\n")
    pw2 = pwd.getpwnam(u2)
    os.chown(target, pw2.pw_uid, pw2.pw_gid)
    os.chmod(target, 0o666)
    box = os.path.join(base, u1, "mbox")
    os.symlink(target, box)
    sandbox.write_config(mailbox=f"{base}/%u/mbox")
    send(sandbox, u1, "planted", sender=u2)
    r = sandbox.run("runq", "-v")
    assert b"4.2.0" in r.stderr and b"symbolic link" in r.stderr, r.stderr
    assert open(target).read() == "u2's file\n"
    assert len(sandbox.queue_files()) == 1
    os.unlink(box)
    assert sandbox.runq().returncode == 0
    assert [m["Subject"] for m in mailbox.mbox(box, create=False)] == ["planted"]


def test_one_message_to_several_tags(sandbox, accounts):
    """One message to user+a, user+b and user (no aliases: routing strips the
    tag): with subaddress-folder=yes a copy in each folder and one in INBOX;
    without it the three addresses are one mailbox and get one copy."""
    u1 = accounts["u1"]
    base = homes(sandbox, u1)
    md = os.path.join(base, u1, "Maildir")
    sandbox.write_config(mailbox=f"{base}/%u/Maildir/", subaddress_folder=True)
    r = sandbox.sendmail("-odq", "-i", f"{u1}+a", f"{u1}+b", u1, message=msg("three tags"))
    assert r.returncode == 0, r.stderr
    assert sandbox.runq().returncode == 0
    assert sandbox.queue_files() == [], sandbox.mailq().stdout
    box = mailbox.Maildir(md, factory=None, create=False)
    assert sorted(box.list_folders()) == ["a", "b"]
    for f in ("a", "b"):
        assert [m["Subject"] for m in box.get_folder(f)] == ["three tags"]
    assert [m["Subject"] for m in box] == ["three tags"]
    sandbox.write_config(mailbox=f"{base}/%u/Maildir/", subaddress_folder=False)
    r = sandbox.sendmail("-odq", "-i", f"{u1}+a", f"{u1}+b", u1, message=msg("one copy"))
    assert r.returncode == 0, r.stderr
    assert sandbox.runq().returncode == 0
    box = mailbox.Maildir(md, factory=None, create=False)
    assert [m["Subject"] for m in box].count("one copy") == 1
    for f in ("a", "b"):
        assert "one copy" not in [m["Subject"] for m in box.get_folder(f)]
