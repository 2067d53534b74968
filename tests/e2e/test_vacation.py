"""Vacation replies (postoffice-vacation(5), RFC 3834): a local user's
~/.vacation.msg and a virtual user's VHOSTDIR/DOMAIN/vacation/USER.msg.

The original goes in through the sendmail front end (-odq) and is delivered
by a queue run; the reply the run queues is delivered by a second run (or by
the daemon, which the reply's submission triggers) and read back with
python's mailbox and email modules.  The vacation user is an account of its
own (povac, created here), so no other test's mail to pouser1 can meet a
vacation file."""
import email
import email.header
import email.policy
import os
import pwd
import shutil
import smtplib
import stat
import subprocess
import time

import pytest

from conftest import IS_ROOT

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="vacation replies are composed as the "
                                "user: the tests make an account and chown files, which "
                                "needs root")

VAC_USER = "povac"
HOST = "mx.test.example"


@pytest.fixture(scope="module")
def vac_account():
    try:
        pw = pwd.getpwnam(VAC_USER)
        created = False
    except KeyError:
        home = f"/tmp/{VAC_USER}-home"
        subprocess.run(["useradd", "-M", "-d", home, "-s", "/bin/sh", VAC_USER], check=True)
        pw = pwd.getpwnam(VAC_USER)
        created = True
    os.makedirs(pw.pw_dir, exist_ok=True)
    os.chown(pw.pw_dir, pw.pw_uid, pw.pw_gid)
    os.chmod(pw.pw_dir, 0o755)
    yield pw
    if created:
        subprocess.run(["userdel", VAC_USER], check=False)
        shutil.rmtree(pw.pw_dir, ignore_errors=True)


class Vac:
    def __init__(self, sb, pw):
        self.sb = sb
        self.pw = pw
        self.sender = "%s@%s" % (sb.acc["u2"], HOST)
        self.me = "%s@%s" % (VAC_USER, HOST)
        self.msgfile = os.path.join(pw.pw_dir, ".vacation.msg")
        self.dbfile = os.path.join(pw.pw_dir, ".vacation.db")
        self.clean()
        self.log = ""

    def clean(self):
        for p in (self.msgfile, self.dbfile):
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            elif os.path.lexists(p):
                os.unlink(p)

    def write(self, text, owner=None, mode=0o644):
        data = text.encode() if isinstance(text, str) else text
        with open(self.msgfile, "wb") as f:
            f.write(data)
        uid, gid = owner if owner else (self.pw.pw_uid, self.pw.pw_gid)
        os.chown(self.msgfile, uid, gid)
        os.chmod(self.msgfile, mode)

    def send(self, headers=None, sender=None, rcpt=None, subject="hello there",
             msgid="<orig.1@client.example>", body="hi\n"):
        sender = self.sender if sender is None else sender
        hdrs = {"From": sender or "nobody@client.example", "To": self.me,
                "Subject": subject, "Message-ID": msgid}
        hdrs.update(headers or {})
        text = "".join("%s: %s\n" % (k, v) for k, v in hdrs.items() if v is not None)
        r = self.sb.sendmail("-odq", "-f", sender, "--", rcpt or self.me,
                             message=text + "\n" + body)
        assert r.returncode == 0, r.stderr

    def deliver(self):
        """Two queue runs: the original, then what it queued (the reply)."""
        self.log = ""
        for _ in range(2):
            r = self.sb.run("runq", "-v")
            self.log += r.stderr.decode(errors="replace")
        return self.log

    def originals(self):
        return self.sb.mbox(VAC_USER)

    def replies(self):
        return self.sb.mbox(self.sb.acc["u2"])


@pytest.fixture
def vac(sandbox, vac_account):
    v = Vac(sandbox, vac_account)
    yield v
    v.clean()


def parsed(msg):
    return email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)


def test_one_reply_with_rfc3834_headers(vac):
    vac.write("I am away until Monday.\nYour mail about \"$SUBJECT\" will wait.\n")
    vac.send()
    log = vac.deliver()
    assert len(vac.originals()) == 1, log
    replies = vac.replies()
    assert len(replies) == 1, log
    r = parsed(replies[0])
    assert r["Auto-Submitted"] == "auto-replied"
    assert r["In-Reply-To"] == "<orig.1@client.example>"
    assert r["References"] == "<orig.1@client.example>"
    assert r["Subject"] == "Auto: hello there"
    assert r["To"].addresses[0].addr_spec == vac.sender
    assert r["From"].addresses[0].addr_spec == vac.me
    assert r["Message-ID"] and r["Message-ID"] != "<orig.1@client.example>"
    assert r["Message-ID"].endswith("@%s>" % HOST)
    assert r["Date"] is not None
    assert r["MIME-Version"] == "1.0"
    assert r.get_content_type() == "text/plain"
    assert r.get_content_charset() == "utf-8"
    assert r.get_content() == ('I am away until Monday.\n'
                               'Your mail about "hello there" will wait.\n')
    # the null sender (RFC 3834), set by the queue owner without a warning
    assert replies[0]["Return-Path"] == "<>"
    assert "X-Authentication-Warning" not in r
    assert "reply to <%s> queued" % vac.sender in log
    # the record was written by the user, for the user only
    st = os.stat(vac.dbfile)
    assert st.st_uid == vac.pw.pw_uid and stat.S_IMODE(st.st_mode) == 0o600


def test_reply_with_root_only_options_in_the_config(vac):
    """The configuration file (given with -C, as a daemon may be started)
    sets options only root may set: the reply is still queued (by the queue
    owner, no sendmail run that would read the file again) and logged."""
    vac.sb.write_config(trusted="127.0.0.1", forward_all=False)
    vac.write("Away.\n")
    vac.send()
    log = vac.deliver()
    assert len(vac.replies()) == 1, log
    assert "proto=vacation" in log, log


def test_utf8_subject_and_body_are_mime_encoded(vac):
    vac.write("Subject: Abwesend – $SUBJECT\nReply-To: desk@%s\n\n"
              "Bin im Urlaub. Grüße\n" % HOST)
    vac.send(subject="Bestellung")
    log = vac.deliver()
    replies = vac.replies()
    assert len(replies) == 1, log
    raw = replies[0].as_bytes()
    assert max(raw) < 0x80, "8-bit bytes in the reply: not MIME-encoded"
    r = parsed(replies[0])
    assert str(email.header.make_header(email.header.decode_header(
        replies[0]["Subject"]))) == "Abwesend – Bestellung"
    assert r["Content-Transfer-Encoding"] == "quoted-printable"
    assert r.get_content() == "Bin im Urlaub. Grüße\n"
    assert r["Reply-To"].addresses[0].addr_spec == "desk@%s" % HOST


def test_once_per_sender_per_period(vac):
    vac.write("Away.\n")
    vac.send(msgid="<one@client.example>")
    vac.deliver()
    vac.send(msgid="<two@client.example>")
    log = vac.deliver()
    assert len(vac.originals()) == 2
    assert len(vac.replies()) == 1, log
    assert "no reply to <%s>: already answered" % vac.sender in log


def test_period_zero_answers_every_message(vac):
    """The other side of the period rule: with Vacation-Period: 0 the same
    two messages get two replies."""
    vac.write("Vacation-Period: 0\n\nAway.\n")
    vac.send(msgid="<one@client.example>")
    vac.deliver()
    vac.send(msgid="<two@client.example>")
    log = vac.deliver()
    assert len(vac.replies()) == 2, log


def test_period_over_answers_again(vac):
    vac.write("Vacation-Period: 2s\n\nAway.\n")
    vac.send(msgid="<one@client.example>")
    vac.deliver()
    time.sleep(2.2)
    vac.send(msgid="<two@client.example>")
    log = vac.deliver()
    assert len(vac.replies()) == 2, log


# (headers, sender, log text): each message is answered without its one
# difference (test_one_reply_with_rfc3834_headers sends the same otherwise)
NEVER = {
    "null-sender": ({}, "", None),
    "auto-submitted": ({"Auto-Submitted": "auto-generated"}, None, "Auto-Submitted"),
    "auto-replied": ({"Auto-Submitted": "auto-replied (vacation)"}, None, "Auto-Submitted"),
    "precedence-bulk": ({"Precedence": "bulk"}, None, "Precedence"),
    "precedence-list": ({"Precedence": "list"}, None, "Precedence"),
    "precedence-junk": ({"Precedence": "junk"}, None, "Precedence"),
    "list-id": ({"List-Id": "Friends <friends.lists.example>"}, None, "mailing list"),
    "list-unsubscribe": ({"List-Unsubscribe": "<mailto:leave@lists.example>"}, None,
                         "mailing list"),
    "auto-response-suppress": ({"X-Auto-Response-Suppress": "DR, OOF"}, None,
                               "X-Auto-Response-Suppress"),
    "x-spam": ({"X-Spam": "flagged by the scanner"}, None, "spam"),
    "x-spam-flag": ({"X-Spam-Flag": "YES"}, None, "spam"),
    "mailer-daemon": ({}, "MAILER-DAEMON@client.example", "mailer daemon"),
    "owner-list": ({}, "owner-friends@lists.example", "mailer daemon"),
    "list-request": ({}, "friends-request@lists.example", "mailer daemon"),
    "own-address": ({}, "%s@%s" % (VAC_USER, HOST), "own address"),
    "not-in-to-cc": ({"To": "friends@lists.example"}, None, "To: or Cc:"),
}


@pytest.mark.parametrize("case", sorted(NEVER))
def test_never_reply(vac, case):
    headers, sender, why = NEVER[case]
    vac.write("Away.\n")
    vac.send(headers=headers, sender=sender)
    log = vac.deliver()
    assert len(vac.originals()) == 1, log
    assert vac.replies() == [], log
    assert vac.sb.queue_files() == [], log      # nothing queued for anyone else either
    assert "reply to <" not in log.replace("no reply to <", ""), log
    if why:
        assert "no reply to <%s>: " % (sender or vac.sender) in log, log
        assert why in log, log
    assert not os.path.exists(vac.dbfile)


@pytest.mark.parametrize("headers", [
    {"Auto-Submitted": "no"},
    {"Precedence": "first-class"},
    {"Cc": "povac@mx.test.example", "To": "someone@client.example"},
], ids=["auto-submitted-no", "precedence-other", "in-cc"])
def test_these_are_answered(vac, headers):
    """Near misses of the rules above: answered."""
    vac.write("Away.\n")
    vac.send(headers=headers)
    log = vac.deliver()
    assert len(vac.replies()) == 1, log


def test_alias_in_file_satisfies_to_check(vac):
    vac.write("Vacation-Alias: team@%s\n\nAway.\n" % HOST)
    vac.send(headers={"To": "Team <team@%s>" % HOST})
    log = vac.deliver()
    assert len(vac.replies()) == 1, log


def test_check_to_off(vac):
    vac.write("Vacation-Check-To: no\n\nAway.\n")
    vac.send(headers={"To": "friends@lists.example"})
    log = vac.deliver()
    assert len(vac.replies()) == 1, log


def test_aliased_address_counts_as_the_users(vac):
    """Mail to an alias of the user, with the alias in To:: the address the
    message was delivered to is one of the user's."""
    vac.sb.set_aliases("postmaster: %s\nhelpdesk: %s\n" % (vac.sb.acc["u1"], VAC_USER))
    vac.write("Away.\n")
    vac.send(headers={"To": "helpdesk@%s" % HOST}, rcpt="helpdesk@%s" % HOST)
    log = vac.deliver()
    assert len(vac.originals()) == 1, log
    assert len(vac.replies()) == 1, log


@pytest.mark.parametrize("kind", ["unknown-field", "not-utf8", "unreadable", "directory",
                                  "too-large", "reply-too-large"])
def test_broken_file_does_not_affect_delivery(vac, kind):
    subject = "hello there"
    if kind == "unknown-field":
        vac.write("Subject: away\nBcc: boss@client.example\n\nAway.\n")
        why = "line 2: unknown field Bcc:"
    elif kind == "not-utf8":
        vac.write(b"Subject: away\n\nAbwesend, Gr\xfc\xdfe\n")
        why = "not UTF-8"
    elif kind == "unreadable":
        vac.write("Away.\n", owner=(0, 0), mode=0o600)
        why = "Permission denied"
    elif kind == "directory":
        os.mkdir(vac.msgfile)
        why = "Is a directory"
    elif kind == "too-large":
        vac.write(("Away. " * 100 + "\n") * 120)
        why = "larger than 64 KiB"
    else:
        vac.write(("$SUBJECT" * 5 + "\n") * 1590)   # 64 KiB, lines of 950 bytes
        subject = "x" * 190
        why = "larger than 256 KiB"
    vac.send(subject=subject)
    log = vac.deliver()
    assert len(vac.originals()) == 1, log
    assert "status=sent" in log
    assert vac.replies() == [], log
    assert "vacation file %s: " % vac.msgfile in log, log
    assert why in log, log
    assert vac.sb.queue_files() == []


def test_no_file_no_process(vac):
    """Without a vacation file nothing is started: no vacation line at all."""
    vac.send()
    log = vac.deliver()
    assert len(vac.originals()) == 1
    assert "vacation" not in log, log


def test_reply_through_the_daemon(vac):
    """The daemon delivers the original and, triggered by the reply's
    submission, the reply, with no queue run by hand."""
    vac.write("Away.\n")
    vac.sb.start_daemon()
    with smtplib.SMTP("127.0.0.1", vac.sb.port, timeout=30) as s:
        s.sendmail(vac.sender, [vac.me],
                   "From: %s\r\nTo: %s\r\nSubject: via smtp\r\nMessage-ID: <smtp.1@c>\r\n"
                   "\r\nhi\r\n" % (vac.sender, vac.me))
    replies = vac.sb.wait_for_mail(vac.sb.acc["u2"], 1, timeout=30)
    assert len(replies) == 1
    assert parsed(replies[0])["In-Reply-To"] == "<smtp.1@c>"


def test_virtual_user(sandbox, vac_account):
    sb = sandbox
    vdir = os.path.join(sb.dir, "virtual")
    vspool = os.path.join(sb.dir, "vspool")
    vuser = pwd.getpwnam(sb.acc["spool"])
    os.makedirs(os.path.join(vdir, "one.example", "vacation"))
    os.makedirs(vspool)
    with open(os.path.join(vdir, "domains.cf"), "w") as f:
        f.write("admin:one.example:1\n")
    r = subprocess.run(["htpasswd", "-bBc", os.path.join(vdir, "one.example", "passwd"),
                        "joe", "secret"], capture_output=True)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(vdir, "one.example", "vacation", "joe.msg"), "w") as f:
        f.write("Subject: Joe is out ($SUBJECT)\n\nBack next week.\n")
    for d, dirs, files in os.walk(vdir):
        os.chown(d, vuser.pw_uid, vuser.pw_gid)
        os.chmod(d, 0o700)
        for n in files:
            os.chown(os.path.join(d, n), vuser.pw_uid, vuser.pw_gid)
    os.chown(vspool, vuser.pw_uid, vuser.pw_gid)
    sb.write_config(vuser=sb.acc["spool"])
    sender = "%s@%s" % (sb.acc["u2"], HOST)
    msg = ("From: %s\nTo: Joe <joe@one.example>\nSubject: offer\n"
           "Message-ID: <v.1@client.example>\n\nhi\n" % sender)
    r = sb.sendmail("-odq", "-f", sender, "joe@one.example", message=msg)
    assert r.returncode == 0, r.stderr
    log = ""
    for _ in range(2):
        log += sb.run("runq", "-v").stderr.decode()
    box = os.path.join(vspool, "one.example", "joe")
    assert os.path.exists(box), log
    replies = sb.mbox(sb.acc["u2"])
    assert len(replies) == 1, log
    rr = parsed(replies[0])
    assert rr["From"].addresses[0].addr_spec == "joe@one.example"
    assert rr["Subject"] == "Joe is out (offer)"
    assert rr["In-Reply-To"] == "<v.1@client.example>"
    db = os.path.join(vdir, "one.example", "vacation", "joe.db")
    assert os.stat(db).st_uid == vuser.pw_uid
    # once per period for virtual users too
    r = sb.sendmail("-odq", "-f", sender, "joe@one.example", message=msg)
    log = ""
    for _ in range(2):
        log += sb.run("runq", "-v").stderr.decode()
    assert len(sb.mbox(sb.acc["u2"])) == 1, log
    assert "already answered" in log
