"""Virtual domains (vhosts(7), domains.cf(5)): domains.cf, routing, the
domains' aliases with the * catch-all, newaliases DOMAIN, delivery to
VSPOOL/DOMAIN/USER as vuser=, and dovecot reading what was delivered.

Mail goes in through the real daemon (python smtplib, swaks) or the sendmail
front end; mailboxes are read with python's mailbox module and doveadm."""
import mailbox
import os
import pwd
import shutil
import smtplib
import subprocess
import time

import pytest

from conftest import IS_ROOT
from smtpclient import bs

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="virtual mailboxes belong to vuser=: "
                                "the tests chown files and need root")

REMOTE = "203.0.113.7"  # TEST-NET-3: a client that may not relay


class VHosts:
    """The sandbox's VHOSTDIR and VSPOOL, with helpers to fill them."""

    def __init__(self, sb):
        self.sb = sb
        self.dir = os.path.join(sb.dir, "virtual")
        self.spool = os.path.join(sb.dir, "vspool")
        self.vuser = sb.acc["spool"]
        pw = pwd.getpwnam(self.vuser)
        os.makedirs(self.dir)
        os.makedirs(self.spool)
        os.chown(self.spool, pw.pw_uid, pw.pw_gid)
        os.chmod(self.spool, 0o700)
        sb.write_config(load=0, vuser=self.vuser)

    def domains(self, text):
        path = os.path.join(self.dir, "domains.cf")
        with open(path + ".new", "w") as f:
            f.write(text)
        os.rename(path + ".new", path)

    def put(self, domain, name, text):
        d = os.path.join(self.dir, domain)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name), "w") as f:
            f.write(text)

    def passwd(self, domain, *users, password="secret"):
        """A passwd file made by htpasswd (bcrypt), as the admin's guide does."""
        d = os.path.join(self.dir, domain)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "passwd")
        if os.path.exists(path):
            os.unlink(path)
        for u in users:
            flags = "-bBc" if not os.path.exists(path) else "-bB"
            r = subprocess.run(["htpasswd", flags, path, u, password], capture_output=True)
            assert r.returncode == 0, r.stderr

    def aliases(self, domain, text, build=True):
        self.put(domain, "aliases", text)
        if build:
            r = self.sb.run("newaliases", domain)
            assert r.returncode == 0, r.stderr

    def fix_perms(self):
        """As the admin's guide does: VHOSTDIR belongs to the vuser (here also
        user=, as mail is both by default), directories 0700, files 0600."""
        pw = pwd.getpwnam(self.vuser)
        for d, dirs, files in os.walk(self.dir):
            os.chown(d, pw.pw_uid, pw.pw_gid)
            os.chmod(d, 0o700)
            for f in files:
                os.chown(os.path.join(d, f), pw.pw_uid, pw.pw_gid)
                os.chmod(os.path.join(d, f), 0o600)

    def mbox_path(self, domain, user):
        return os.path.join(self.spool, domain, user)

    def mbox(self, domain, user):
        path = self.mbox_path(domain, user)
        if not os.path.exists(path):
            return []
        box = mailbox.mbox(path, create=False)
        try:
            return list(box)
        finally:
            box.close()

    def wait(self, domain, user, count=1, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            msgs = self.mbox(domain, user)
            if len(msgs) >= count:
                return msgs
            time.sleep(0.05)
        return self.mbox(domain, user)


@pytest.fixture
def vh(sandbox):
    v = VHosts(sandbox)
    u1, u2 = sandbox.acc["u1"], sandbox.acc["u2"]
    v.domains("# owner:domain:active[:comment]\n"
              "admin:one.example:1:first\n"
              "admin:Two.Example:1\n"
              "admin:three.example:1\n"
              "admin:off.example:0:switched off\n"
              "#admin:comment.example:1\n")
    v.passwd("one.example", u1, "Joe")
    v.passwd("two.example", u1, u2)
    v.passwd("three.example")
    v.passwd("off.example", u1)
    v.passwd("comment.example", u1)
    v.aliases("one.example", "info: %s\nboss: %s@two.example\n" % (u1, u2))
    v.aliases("two.example", "*: %s\n" % u2)           # a fixed catch-all
    v.aliases("three.example", "*: *@two.example\n")   # rewrite to the same user there
    v.fix_perms()
    return v


def rcpt_replies(sb, rcpts, peer=REMOTE, sender="a@[203.0.113.1]"):
    lines = ["EHLO client.example", "MAIL FROM:<%s>" % sender]
    lines += ["RCPT TO:<%s>" % r for r in rcpts]
    lines.append("QUIT")
    replies = bs(sb, ("\r\n".join(lines) + "\r\n").encode(), "-R", peer)
    return replies[3:3 + len(rcpts)]


def send(sb, rcpts, subject, sender=None):
    """Through the daemon with smtplib (a loopback client)."""
    msg = "From: a@example.org\r\nSubject: %s\r\n\r\nbody of %s\r\n" % (subject, subject)
    with smtplib.SMTP("127.0.0.1", sb.port, timeout=30) as s:
        s.sendmail(sender or "a@[203.0.113.1]", rcpts, msg)


def subjects(msgs):
    return sorted(m["Subject"] for m in msgs)


def test_domains_cf_active_inactive_comment(vh):
    u1 = vh.sb.acc["u1"]
    got = rcpt_replies(vh.sb, ["%s@one.example" % u1, "%s@TWO.Example" % u1,
                               "%s@off.example" % u1, "%s@comment.example" % u1])
    assert got[0][0] == 250 and got[1][0] == 250, got
    # inactive and commented-out domains are not ours: a stranger may not relay there
    assert got[2][0] == 554 and got[3][0] == 554, got


def test_domains_cf_edits_seen_without_restart(vh):
    sb, u1 = vh.sb, vh.sb.acc["u1"]
    sb.start_daemon()

    def rcpt(addr):
        with smtplib.SMTP("127.0.0.1", sb.port, timeout=30) as s:
            s.ehlo("client.example")
            s.mail("a@[203.0.113.1]")
            return s.rcpt(addr)[0]

    # a loopback client may relay: off.example goes out (accepted) but is not
    # local; a virtual user's 550 shows the domain is ours
    assert rcpt("nobody@off.example") == 250
    vh.domains("admin:one.example:1\nadmin:off.example:1\n")
    assert rcpt("nobody@off.example") == 550
    assert rcpt("%s@off.example" % u1) == 250
    vh.domains("admin:one.example:1\nadmin:off.example:0\n")
    assert rcpt("nobody@off.example") == 250


def test_unknown_virtual_user_550(vh):
    u1, u2 = vh.sb.acc["u1"], vh.sb.acc["u2"]
    got = rcpt_replies(vh.sb, ["nobody@one.example", "%s@one.example" % u2,
                               "a/b@one.example", ".hidden@one.example",
                               "JOE@One.Example", "info@one.example",
                               "%s@two.example" % u2])
    codes = [c for c, _ in got]
    # u2 is a local account, but not a user of one.example: namespaces are apart
    assert codes[:3] + codes[4:] == [550, 550, 550, 250, 250, 250], got
    assert codes[3] in (550, 553), got  # a leading dot is bad syntax already
    assert got[0][1][0].startswith(b"5.1.1")
    # anything goes for a domain with a catch-all
    assert rcpt_replies(vh.sb, ["whoever@two.example"])[0][0] == 250


def test_three_mailboxes_for_one_name(vh):
    sb, u1 = vh.sb, vh.sb.acc["u1"]
    sb.start_daemon()
    send(sb, ["%s@one.example" % u1], "to-one")
    send(sb, ["%s@two.example" % u1], "to-two")
    send(sb, ["%s@%s" % (u1, sb.hostname)], "to-local")
    assert subjects(vh.wait("one.example", u1)) == ["to-one"]
    assert subjects(vh.wait("two.example", u1)) == ["to-two"]
    assert subjects(sb.wait_for_mail(u1)) == ["to-local"]
    assert sb.wait_queue_empty()
    time.sleep(0.3)
    assert len(vh.mbox("one.example", u1)) == 1 and len(vh.mbox("two.example", u1)) == 1
    assert len(sb.mbox(u1)) == 1
    # the mailboxes and the domain directories belong to vuser, private
    vu = pwd.getpwnam(vh.vuser)
    for d in ("one.example", "two.example"):
        st = os.stat(os.path.join(vh.spool, d))
        assert (st.st_uid, st.st_mode & 0o7777) == (vu.pw_uid, 0o700)
        st = os.stat(vh.mbox_path(d, u1))
        assert (st.st_uid, st.st_mode & 0o777) == (vu.pw_uid, 0o600)
    msg = vh.mbox("one.example", u1)[0]
    assert msg["Delivered-To"] == "%s@one.example" % u1


def test_user_name_case_and_swaks(vh):
    """The passwd file says Joe; the mailbox file is joe (lower case)."""
    sb = vh.sb
    sb.start_daemon()
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(sb.port),
                        "--from", "a@example.org", "--to", "JOE@One.Example",
                        "--header", "Subject: via swaks"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert subjects(vh.wait("one.example", "joe")) == ["via swaks"]
    assert not os.path.exists(vh.mbox_path("one.example", "Joe"))
    assert not os.path.exists(vh.mbox_path("one.example", "JOE"))


def test_aliases_and_catch_all(vh):
    sb, u1, u2 = vh.sb, vh.sb.acc["u1"], vh.sb.acc["u2"]
    sb.start_daemon()
    send(sb, ["info@one.example"], "info")             # alias: a bare name is one.example's
    send(sb, ["boss@one.example"], "boss")             # alias to another virtual domain
    send(sb, ["stranger@two.example"], "fixed")        # two's fixed catch-all
    send(sb, ["%s@three.example" % u1], "rewritten")   # *@two.example: same user there
    send(sb, ["nobody@three.example"], "twice")        # rewritten, then two's catch-all
    assert subjects(vh.wait("one.example", u1)) == ["info"]
    assert subjects(vh.wait("two.example", u1)) == ["rewritten"]
    assert subjects(vh.wait("two.example", u2, 3)) == ["boss", "fixed", "twice"]
    assert sb.wait_queue_empty()
    assert sb.mbox(u1) == [] and sb.mbox(u2) == []     # no local mailbox got any
    assert not os.path.exists(os.path.join(vh.spool, "three.example"))


def test_catch_all_loop_is_refused(vh):
    vh.aliases("two.example", "*: *@three.example\n")  # three rewrites back to two
    got = rcpt_replies(vh.sb, ["nobody@three.example"])
    assert got[0][0] == 250  # the catch-all makes every name exist
    r = vh.sb.sendmail("-f", "", "nobody@three.example", message="Subject: loop\n\nx\n")
    assert r.returncode == 0, r.stderr
    assert vh.sb.wait_queue_empty()
    for d in ("two.example", "three.example"):
        assert not os.path.exists(os.path.join(vh.spool, d, "nobody"))


def test_programs_files_include_refused(vh, tmp_path):
    sb, u2 = vh.sb, vh.sb.acc["u2"]
    mark = tmp_path / "ran"
    target = tmp_path / "file"
    inc = tmp_path / "inc"
    inc.write_text("%s\n" % sb.acc["u1"])
    vh.aliases("one.example", 'prog: "|/bin/touch %s"\nfile: %s\ninc: :include:%s\n'
               'mixed: info, "|/bin/touch %s"\ninfo: %s\n'
               % (mark, target, inc, mark, sb.acc["u1"]))
    local_sender = "%s@%s" % (u2, sb.hostname)
    for rcpt in ("prog", "file", "inc", "mixed"):
        r = sb.sendmail("-f", local_sender, rcpt + "@one.example",
                        message="Subject: %s\n\nx\n" % rcpt)
        assert r.returncode == 0, r.stderr
    assert sb.wait_queue_empty(30)
    bounces = sb.wait_for_mail(u2, 3)
    text = "\n".join(m.as_string() for m in bounces)
    assert len(bounces) == 3, text
    assert "may name addresses only" in text
    assert not mark.exists() and not target.exists()
    # the list's address member is still delivered
    assert subjects(vh.mbox("one.example", sb.acc["u1"])) == ["mixed"]


def test_no_forward_for_virtual_users(vh):
    sb, u1, u2 = vh.sb, vh.sb.acc["u1"], vh.sb.acc["u2"]
    home = pwd.getpwnam(u1).pw_dir
    fwd = os.path.join(home, ".forward")
    assert not os.path.exists(fwd)
    pw = pwd.getpwnam(u1)
    with open(fwd, "w") as f:
        f.write("%s\n" % u2)
    os.chown(fwd, pw.pw_uid, pw.pw_gid)
    os.chmod(fwd, 0o644)
    try:
        for rcpt, subj in (("%s@one.example" % u1, "virtual"), (u1, "local")):
            r = sb.sendmail("-f", "", rcpt, message="Subject: %s\n\nx\n" % subj)
            assert r.returncode == 0, r.stderr
        assert sb.wait_queue_empty()
        assert subjects(vh.mbox("one.example", u1)) == ["virtual"]
        assert subjects(sb.mbox(u2)) == ["local"]  # the local user's .forward works
        assert sb.mbox(u1) == []
    finally:
        os.unlink(fwd)


def test_newaliases_domain(vh):
    sb, u1 = vh.sb, vh.sb.acc["u1"]
    vh.put("one.example", "aliases", "info: %s\nsales: info\n" % u1)
    r = sb.run("newaliases", "one.example")
    assert r.returncode == 0, r.stderr
    assert b"one.example/aliases: 2 aliases" in r.stderr
    assert os.path.exists(os.path.join(vh.dir, "one.example", "aliases.db"))
    for dom in ("nosuch.example", "off.example", "comment.example"):
        r = sb.run("newaliases", dom)
        assert r.returncode == 68, r
        assert (dom + ": not a known virtual domain").encode() in r.stderr
    # as the system aliases: the database answers, an edit counts after newaliases
    vh.put("one.example", "aliases", "info: %s\nsales: info\nnew: info\n" % u1)
    assert rcpt_replies(sb, ["new@one.example"])[0][0] == 550
    assert sb.run("newaliases", "one.example").returncode == 0
    assert rcpt_replies(sb, ["new@one.example"])[0][0] == 250
    # no database yet: the text file is read
    vh.aliases("four.example", "x: y\n", build=False)
    vh.domains("admin:one.example:1\nadmin:four.example:1\n")
    vh.passwd("four.example", "y")
    got = rcpt_replies(sb, ["x@four.example", "z@four.example"])
    assert [c for c, _ in got] == [250, 550], got


def test_virtual_sender_from_outside_refused(vh):
    """verify-from: a virtual domain is one of ours (its users send after AUTH)."""
    u1 = vh.sb.acc["u1"]
    replies = bs(vh.sb, ("EHLO c.example\r\nMAIL FROM:<%s@one.example>\r\nQUIT\r\n"
                         % u1).encode(), "-R", REMOTE)
    assert replies[2][0] == 550 and replies[2][1][0].startswith(b"5.7.1")
    vh.sb.write_config(verify_from=0)
    replies = bs(vh.sb, ("EHLO c.example\r\nMAIL FROM:<%s@one.example>\r\nQUIT\r\n"
                         % u1).encode(), "-R", REMOTE)
    assert replies[2][0] == 250


def test_survives_queue_run_and_restart(vh):
    """Targets an alias expanded to are kept in the queue file ("\\user@domain")
    and delivered to the same virtual mailboxes by a later run."""
    sb, u1, u2 = vh.sb, vh.sb.acc["u1"], vh.sb.acc["u2"]
    vh.aliases("one.example", "team: %s, joe, %s@two.example\n" % (u1, u2))
    moved = vh.spool + ".away"
    os.rename(vh.spool, moved)  # delivery defers: no VSPOOL
    r = sb.sendmail("-f", "", "team@one.example", "%s@two.example" % u1,
                    message="Subject: later\n\nx\n")
    assert r.returncode == 0, r.stderr
    time.sleep(0.5)
    sb.runq()
    q = sb.queued()
    assert len(q) == 1, q
    ctl = list(q.values())[0][1]
    for t in ("\\\\%s@one.example" % u1, "\\\\joe@one.example", "\\\\%s@two.example" % u2):
        assert t in ctl or t.replace("\\\\", "\\") in ctl, ctl
    assert "virtual mail spool" in sb.mailq().stdout.decode()
    os.rename(moved, vh.spool)
    r = sb.runq()  # a new process reads the targets from the queue file
    assert r.returncode == 0, r.stderr
    assert sb.wait_queue_empty(30), sb.mailq().stdout.decode()
    assert subjects(vh.mbox("one.example", u1)) == ["later"]
    assert subjects(vh.mbox("one.example", "joe")) == ["later"]
    assert subjects(vh.mbox("two.example", u2)) == ["later"]
    assert subjects(vh.mbox("two.example", u1)) == ["later"]


def test_unsafe_spool_directory_defers(vh):
    """VSPOOL/DOMAIN as a symlink is never followed by root."""
    sb, u1 = vh.sb, vh.sb.acc["u1"]
    elsewhere = os.path.join(sb.dir, "elsewhere")
    os.makedirs(elsewhere)
    os.symlink(elsewhere, os.path.join(vh.spool, "one.example"))
    r = sb.sendmail("-f", "", "%s@one.example" % u1, message="Subject: s\n\nx\n")
    assert r.returncode == 0, r.stderr
    time.sleep(0.5)
    sb.runq()
    assert len(sb.queued()) == 1
    assert os.listdir(elsewhere) == []
    assert "symbolic link" in sb.mailq().stdout.decode()


def test_domain_switched_off_after_queueing(vh):
    """A queued target of a domain switched off waits (the admin may be moving
    it), and is delivered once the domain is on again."""
    sb, u1 = vh.sb, vh.sb.acc["u1"]
    vh.aliases("one.example", "pair: %s, joe\n" % u1)
    os.rename(vh.spool, vh.spool + ".away")
    assert sb.sendmail("-f", "", "pair@one.example", message="Subject: p\n\nx\n").returncode == 0
    time.sleep(0.5)
    sb.runq()
    os.rename(vh.spool + ".away", vh.spool)
    vh.domains("admin:one.example:0\n")
    sb.runq()
    assert len(sb.queued()) == 1
    assert "not an active virtual domain" in sb.mailq().stdout.decode()
    vh.domains("admin:one.example:1\n")
    sb.runq()
    assert sb.wait_queue_empty()
    assert subjects(vh.mbox("one.example", "joe")) == ["p"]


DOVECOT_CONF = """\
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
protocols =
ssl = no
auth_username_format = %Lu
first_valid_uid = 1
service auth {{
  user = {vuser}
}}
passdb {{
  driver = passwd-file
  args = scheme=CRYPT username_format=%n {vhost}/%d/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/home/%d/%n
}}
mail_location = mbox:{base}/home/%d/%n/mail:INBOX={vspool}/%d/%n:INDEX=MEMORY
"""


def test_dovecot_reads_what_was_delivered(vh, tmp_path):
    doveadm = shutil.which("doveadm") or "/usr/bin/doveadm"
    if not os.path.exists(doveadm):
        pytest.skip("dovecot-core is not installed (./bootstrap.sh installs it)")
    sb, u1 = vh.sb, vh.sb.acc["u1"]
    sb.start_daemon()
    send(sb, ["%s@one.example" % u1], "for dovecot")
    with smtplib.SMTP("127.0.0.1", sb.port, timeout=30) as c:
        c.sendmail("a@example.org", ["%s@one.example" % u1],
                   "Subject: escaped\r\n\r\nFrom the start of a line\r\nend\r\n")
    assert len(vh.wait("one.example", u1, 2)) == 2
    vu = pwd.getpwnam(vh.vuser)
    base = tmp_path / "dovecot"
    for d in ("run", "state", "home"):
        (base / d).mkdir(parents=True)
    os.chown(base / "home", vu.pw_uid, vu.pw_gid)
    os.chmod(tmp_path, 0o755)
    conf = base / "dovecot.conf"
    conf.write_text(DOVECOT_CONF.format(base=base, vhost=vh.dir, vspool=vh.spool,
                                        uid=vu.pw_uid, gid=vu.pw_gid, vuser=vh.vuser))
    vh.fix_perms()  # the passwd files are the vuser's, mode 0600

    # the master runs the auth service doveadm asks (no protocols: no listener)
    dovecot = subprocess.Popen(["/usr/sbin/dovecot", "-F", "-c", str(conf)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 20
        while not (base / "run" / "auth-userdb").exists() and time.time() < deadline:
            assert dovecot.poll() is None, dovecot.stderr.read()
            time.sleep(0.1)
        read_back(doveadm, conf, u1)
    except AssertionError:
        log = base / "dovecot.log"
        print(log.read_text() if log.exists() else "no dovecot log")
        raise
    finally:
        dovecot.terminate()
        dovecot.wait(timeout=20)


def read_back(doveadm, conf, u1):
    def fetch(user, what):
        r = subprocess.run([doveadm, "-c", str(conf), "fetch", "-u", user, what,
                            "mailbox", "INBOX", "all"], capture_output=True, timeout=60)
        assert r.returncode == 0, (r.stdout, r.stderr)
        return r.stdout.decode()

    out = fetch("%s@one.example" % u1, "text")
    assert "Subject: for dovecot" in out and "body of for dovecot" in out
    # auth_username_format=%Lu: any case finds the lower-case mailbox, and
    # the body line postoffice escaped did not split the message
    out = fetch("%s@One.Example" % u1.upper(), "hdr.subject body")
    assert "escaped" in out and "From the start of a line" in out
    assert out.count("hdr.subject:") == 2, out
    # dovecot checks the same password the passwd file holds
    r = subprocess.run([doveadm, "-c", str(conf), "auth", "test", "%s@one.example" % u1,
                        "secret"], capture_output=True, timeout=60)
    assert r.returncode == 0 and b"succeeded" in r.stdout, (r.stdout, r.stderr)
    # a user of another domain is not found there
    r = subprocess.run([doveadm, "-c", str(conf), "fetch", "-u", "nobody@two.example", "text",
                        "mailbox", "INBOX", "all"], capture_output=True, timeout=60)
    assert r.returncode != 0


WALK_ALIASES = """\
postmaster: joe
info: joe, ann
abuse: postmaster
# everything else to joe:
*: joe
"""


def test_walk_through_of_vhosts_7(sandbox):
    """The EXAMPLES of vhosts(7), step by step, in the sandbox."""
    sb = sandbox
    v = VHosts(sb)                                                  # 1. directories
    v.domains("alice:one.example:1:Alice's shop\n")                 # 2. the domain
    d = os.path.join(v.dir, "one.example")
    os.makedirs(d)
    for flags, user in (("-bcB", "joe"), ("-bB", "ann")):           # 3. users
        r = subprocess.run(["htpasswd", flags, os.path.join(d, "passwd"), user, "pw"],
                           capture_output=True)
        assert r.returncode == 0, r.stderr
    v.put("one.example", "aliases", WALK_ALIASES)                   # 4. aliases
    r = sb.run("newaliases", "one.example")
    assert r.returncode == 0, r.stderr
    assert r.stderr.decode().endswith("one.example/aliases: 4 aliases, longest 10 bytes\n")
    v.fix_perms()                                                   # 5. permissions
    sb.start_daemon()                                               # 6. swaks
    for rcpt in ("joe@one.example", "anything@one.example", "info@one.example"):
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(sb.port),
                            "--to", rcpt, "--from", "you@example.org",
                            "--header", "Subject: to " + rcpt], capture_output=True,
                           timeout=60)
        assert r.returncode == 0, r.stdout
    assert subjects(v.wait("one.example", "joe", 3)) == [
        "to anything@one.example", "to info@one.example", "to joe@one.example"]
    assert subjects(v.wait("one.example", "ann")) == ["to info@one.example"]
    st = os.stat(v.mbox_path("one.example", "joe"))
    assert (st.st_uid, st.st_mode & 0o777) == (pwd.getpwnam(v.vuser).pw_uid, 0o600)


def test_switched_off_domain_with_mx_here(vh):
    """A domain switched off while its MX still points here (an admin moving it
    away): its mail is not given to the local accounts of the same names."""
    from dnsserver import ZoneServer
    sb, u1 = vh.sb, vh.sb.acc["u1"]
    zone = {"off.example": [("MX", 10, "mx.local.example")],
            "mine.example": [("MX", 10, "mx.local.example")],
            "mx.local.example": [("A", "127.0.0.1")]}
    zs = ZoneServer(zone)
    zs.start()
    try:
        sb.write_config(resolver=zs.resolver, dns_timeout=2, dns_tries=1)
        got = rcpt_replies(sb, ["%s@off.example" % u1, "%s@mine.example" % u1])
        assert got[0][0] == 451 and b"switched off" in got[0][1][0], got
        assert got[1][0] == 250, got  # a domain not in domains.cf: local by its MX
        r = sb.sendmail("-f", "", "-odq", "%s@off.example" % u1, message="Subject: o\n\nx\n")
        assert r.returncode == 0, r.stderr
        sb.runq()
        assert len(sb.queued()) == 1
        assert "switched off here" in sb.mailq().stdout.decode()
        assert sb.mbox(u1) == []
        vh.domains("admin:off.example:1\n")  # on again: delivered to the virtual user
        sb.runq()
        assert sb.wait_queue_empty()
        assert subjects(vh.mbox("off.example", u1)) == ["o"]
        assert sb.mbox(u1) == []
    finally:
        zs.stop()


def test_virtual_maildir(vh):
    """virtual-maildir=yes: VSPOOL/DOMAIN/USER/ is a maildir made and written
    by vuser= (0700), read back with python's Maildir; no mbox file appears;
    a user+tag address lands in the same maildir's INBOX."""
    sb, u1 = vh.sb, vh.sb.acc["u1"]
    sb.write_config(virtual_maildir=True)
    for rcpt, subject in (("%s@one.example" % u1, "first"),
                          ("%s+news@one.example" % u1, "tagged")):
        r = sb.sendmail("-odq", "-i", rcpt,
                        message="Subject: %s\n\nFrom the start of a line\n" % subject)
        assert r.returncode == 0, r.stderr
    assert sb.runq().returncode == 0
    assert sb.queue_files() == [], sb.mailq().stdout
    path = vh.mbox_path("one.example", u1)
    assert os.path.isdir(path) and not os.path.islink(path)
    vu = pwd.getpwnam(vh.vuser)
    for d in ("", "tmp", "new", "cur"):
        st = os.lstat(os.path.join(path, d))
        assert (st.st_uid, st.st_mode & 0o777) == (vu.pw_uid, 0o700), d
    box = mailbox.Maildir(path, factory=None, create=False)
    msgs = list(box)
    assert sorted(m["Subject"] for m in msgs) == ["first", "tagged"]
    for m in msgs:
        assert m.get_payload() == "From the start of a line\n"   # no mbox escaping
        assert m["Delivered-To"].lower().endswith("@one.example")
    # back to mbox files: the next user's mailbox is a file again
    sb.write_config(virtual_maildir=False)
    r = sb.sendmail("-odq", "-i", "%s@two.example" % u1, message="Subject: mbox\n\nx\n")
    assert r.returncode == 0, r.stderr
    assert sb.runq().returncode == 0
    assert os.path.isfile(vh.mbox_path("two.example", u1))
    assert subjects(vh.mbox("two.example", u1)) == ["mbox"]
