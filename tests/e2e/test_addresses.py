"""Addresses (issue 13): user+tag subaddresses (recipient-delimiter=), the
"*" catch-all of the aliases file, and the qualification of bare names in
the headers of mail the sendmail front end submits (qualify-headers=).

Mail goes in through the real daemon (python smtplib, swaks), -bs sessions
and the sendmail front end; mailboxes are read with python's mailbox
module."""
import os
import pwd
import shutil
import smtplib
import subprocess
import time

import pytest

from conftest import IS_ROOT
from smtpclient import bs

REMOTE = "203.0.113.7"  # TEST-NET-3: a client that may not relay


def rcpt_codes(sb, rcpts, peer=REMOTE):
    """RCPT replies of a -bs session from a client that may not relay."""
    lines = ["EHLO client.example", "MAIL FROM:<a@[203.0.113.1]>"]
    lines += ["RCPT TO:<%s>" % r for r in rcpts]
    lines.append("QUIT")
    replies = bs(sb, ("\r\n".join(lines) + "\r\n").encode(), "-R", peer)
    return [c for c, _ in replies[3:3 + len(rcpts)]]


def smtp_send(sb, rcpts, subject, headers=""):
    msg = "From: a@example.org\r\nSubject: %s\r\n%s\r\nbody of %s\r\n" % (
        subject, headers, subject)
    with smtplib.SMTP("127.0.0.1", sb.port, timeout=30) as s:
        s.sendmail("a@[203.0.113.1]", rcpts, msg)


def sendmail(sb, *args, message="Subject: t\n\nhello\n"):
    r = sb.sendmail("-i", *args, message=message)
    assert r.returncode == 0, r.stderr
    return r


def subjects(msgs):
    return sorted(m["Subject"] for m in msgs)


def bv(sb, *addrs):
    r = sb.run("postoffice", "-bv", *addrs)
    return r.returncode, r.stdout.decode()


# ---- subaddresses ----

def test_tag_delivers_to_user_with_full_delivered_to(sandbox):
    sb, u1 = sandbox, sandbox.acc["u1"]
    sb.start_daemon()
    smtp_send(sb, ["%s+lists@%s" % (u1, sb.hostname)], "tagged")
    msgs = sb.wait_for_mail(u1)
    assert subjects(msgs) == ["tagged"]
    # the whole address, tag and all, as the client gave it
    assert msgs[0]["Delivered-To"] == "%s+lists@%s" % (u1, sb.hostname)
    assert sb.wait_queue_empty()


def test_tag_with_swaks_and_sendmail(sandbox):
    sb, u1 = sandbox, sandbox.acc["u1"]
    sb.start_daemon()
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(sb.port),
                        "--to", "%s+swaks@%s" % (u1, sb.hostname),
                        "--from", "a@[203.0.113.1]", "--header", "Subject: by-swaks"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    sendmail(sb, "%s+local" % u1, message="Subject: by-sendmail\n\nx\n")
    msgs = sb.wait_for_mail(u1, 2)
    assert subjects(msgs) == ["by-sendmail", "by-swaks"]
    got = {m["Subject"]: m["Delivered-To"] for m in msgs}
    assert got == {"by-swaks": "%s+swaks@%s" % (u1, sb.hostname),
                   "by-sendmail": "%s+local" % u1}


def test_rcpt_check_accepts_tag_of_known_user_only(sandbox):
    sb, u1 = sandbox, sandbox.acc["u1"]
    sb.set_aliases("postmaster: %s\nteam: %s\n" % (u1, u1))
    codes = rcpt_codes(sb, ["%s+x@%s" % (u1, sb.hostname), "team+y@%s" % sb.hostname,
                            "nosuch-po+x@%s" % sb.hostname, "+x@%s" % sb.hostname,
                            "%s-x@%s" % (u1, sb.hostname), "%s+@%s" % (u1, sb.hostname)])
    assert codes == [250, 250, 550, 550, 550, 250], codes


def test_exact_name_with_tag_wins(sandbox):
    sb, u1, u2 = sandbox, sandbox.acc["u1"], sandbox.acc["u2"]
    if u1 == u2:
        pytest.skip("needs two accounts (root)")
    sb.set_aliases("postmaster: %s\n%s+special: %s\n" % (u1, u1, u2))
    sendmail(sb, "%s+special" % u1, message="Subject: exact\n\nx\n")
    sendmail(sb, "%s+other" % u1, message="Subject: stripped\n\nx\n")
    assert subjects(sb.wait_for_mail(u2)) == ["exact"]
    assert subjects(sb.wait_for_mail(u1)) == ["stripped"]
    assert sb.wait_queue_empty()
    rc, out = bv(sb, "%s+special" % u1)
    assert rc == 0 and "mailbox %s" % u2 in out, out


def test_delimiter_dash(sandbox):
    sb, u1 = sandbox, sandbox.acc["u1"]
    sb.write_config(recipient_delimiter="-")
    sb.set_aliases("postmaster: %s\nlist-request: %s\n" % (u1, u1))
    codes = rcpt_codes(sb, ["%s-x@%s" % (u1, sb.hostname), "%s+x@%s" % (u1, sb.hostname),
                            "list-request@%s" % sb.hostname,
                            "owner-%s@%s" % (u1, sb.hostname)])
    # owner-NAME and NAME-request never split with "-"
    assert codes == [250, 550, 250, 550], codes
    sb.start_daemon()
    smtp_send(sb, ["%s-dash@%s" % (u1, sb.hostname)], "dash")
    msgs = sb.wait_for_mail(u1)
    assert subjects(msgs) == ["dash"]
    assert msgs[0]["Delivered-To"] == "%s-dash@%s" % (u1, sb.hostname)


def test_delimiter_off(sandbox):
    sb, u1 = sandbox, sandbox.acc["u1"]
    sb.write_config(recipient_delimiter="")
    assert rcpt_codes(sb, ["%s+x@%s" % (u1, sb.hostname), u1 + "@" + sb.hostname]) == [550, 250]
    rc, out = bv(sb, "%s+x" % u1)
    assert rc == 67 and "5.1.1" in out, out


def test_bad_delimiter_refused(sandbox):
    r = sandbox.run("postoffice", "-o", "recipient-delimiter=@", "-bv", "x")
    assert r.returncode == 78 and b"recipient-delimiter" in r.stderr


def test_tag_through_alias(sandbox):
    sb, u1, u2 = sandbox, sandbox.acc["u1"], sandbox.acc["u2"]
    sb.set_aliases("postmaster: %s\nteam: %s, %s\n" % (u1, u1, u2))
    sb.start_daemon()
    smtp_send(sb, ["team+news@%s" % sb.hostname], "to-team")
    for u in {u1, u2}:
        msgs = sb.wait_for_mail(u)
        assert subjects(msgs) == ["to-team"]
        assert msgs[0]["Delivered-To"] == "team+news@%s" % sb.hostname
    rc, out = bv(sb, "team+news")
    assert rc == 0 and "mailbox %s" % u1 in out, out


def test_tag_through_forward(sandbox):
    if not IS_ROOT:
        pytest.skip(".forward tests need root (a test account with its own home)")
    sb, u1, u2 = sandbox, sandbox.acc["u1"], sandbox.acc["u2"]
    pw = pwd.getpwnam(u2)
    fwd = os.path.join(pw.pw_dir, ".forward")
    with open(fwd, "w") as f:
        f.write("%s\n" % u1)
    os.chown(fwd, pw.pw_uid, pw.pw_gid)
    os.chmod(fwd, 0o644)
    try:
        sendmail(sb, "%s+fwd@%s" % (u2, sb.hostname), message="Subject: forwarded\n\nx\n")
        msgs = sb.wait_for_mail(u1)
        assert subjects(msgs) == ["forwarded"]
        assert msgs[0]["Delivered-To"] == "%s+fwd@%s" % (u2, sb.hostname)
        assert sb.mbox(u2) == []
        rc, out = bv(sb, "%s+fwd" % u2)
        assert rc == 0 and "mailbox %s" % u1 in out, out
    finally:
        os.unlink(fwd)


def test_tag_of_virtual_user(sandbox):
    if not IS_ROOT:
        pytest.skip("virtual mailboxes belong to vuser=: needs root")
    sb, u1 = sandbox, sandbox.acc["u1"]
    vdir, vspool = os.path.join(sb.dir, "virtual"), os.path.join(sb.dir, "vspool")
    vuser = pwd.getpwnam(sb.acc["spool"])
    os.makedirs(os.path.join(vdir, "v.example"))
    os.makedirs(vspool)
    with open(os.path.join(vdir, "domains.cf"), "w") as f:
        f.write("admin:v.example:1\n")
    r = subprocess.run(["htpasswd", "-bBc", os.path.join(vdir, "v.example", "passwd"),
                        "joe", "secret"], capture_output=True)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(vdir, "v.example", "aliases"), "w") as f:
        f.write("info: joe\njoe+exact: info\n")
    for d, _, files in os.walk(vdir):
        os.chown(d, vuser.pw_uid, vuser.pw_gid)
        for fn in files:
            os.chown(os.path.join(d, fn), vuser.pw_uid, vuser.pw_gid)
    os.chown(vspool, vuser.pw_uid, vuser.pw_gid)
    sb.write_config(vuser=sb.acc["spool"])
    assert sb.run("newaliases", "v.example").returncode == 0
    codes = rcpt_codes(sb, ["joe+x@v.example", "info+y@v.example", "nobody+x@v.example",
                            "joe+exact@v.example"])
    assert codes == [250, 250, 550, 250], codes
    sb.start_daemon()
    smtp_send(sb, ["joe+x@v.example"], "virtual-tag")
    path = os.path.join(vspool, "v.example", "joe")
    deadline = time.time() + 20
    while time.time() < deadline and not os.path.exists(path):
        time.sleep(0.05)
    assert sb.wait_queue_empty()
    import mailbox
    box = mailbox.mbox(path, create=False)
    msgs = list(box)
    box.close()
    assert subjects(msgs) == ["virtual-tag"]
    assert msgs[0]["Delivered-To"] == "joe+x@v.example"


# ---- the "*" catch-all ----

def test_catchall_takes_unknown_names_only(sandbox):
    sb, u1, u2 = sandbox, sandbox.acc["u1"], sandbox.acc["u2"]
    if u1 == u2:
        pytest.skip("needs two accounts (root)")
    sb.set_aliases("postmaster: %s\nteam: %s\n*: %s\n" % (u1, u1, u2))
    sb.start_daemon()
    smtp_send(sb, ["nobody-here@%s" % sb.hostname], "unknown")
    smtp_send(sb, ["%s@%s" % (u1, sb.hostname)], "user")
    smtp_send(sb, ["team@%s" % sb.hostname], "alias")
    smtp_send(sb, ["%s+tag@%s" % (u1, sb.hostname)], "user-tag")
    smtp_send(sb, ["stranger-po+tag@%s" % sb.hostname], "unknown-tag")
    assert subjects(sb.wait_for_mail(u1, 3)) == ["alias", "user", "user-tag"]
    caught = sb.wait_for_mail(u2, 2)
    assert subjects(caught) == ["unknown", "unknown-tag"]
    assert {m["Delivered-To"] for m in caught} == {
        "nobody-here@%s" % sb.hostname, "stranger-po+tag@%s" % sb.hostname}
    assert sb.wait_queue_empty()


def test_catchall_rcpt_acceptance(sandbox):
    sb, u1 = sandbox, sandbox.acc["u1"]
    sb.set_aliases("postmaster: %s\n" % u1)
    assert rcpt_codes(sb, ["whoever@%s" % sb.hostname]) == [550]
    sb.set_aliases("postmaster: %s\n*: postmaster\n" % u1)
    assert rcpt_codes(sb, ["whoever@%s" % sb.hostname, "a.b@%s" % sb.hostname,
                           "x@elsewhere.example"]) == [250, 250, 554]
    # "*" itself is the key, not a name one can write to
    assert rcpt_codes(sb, ["*@%s" % sb.hostname]) == [550]


def test_catchall_database_and_forms(sandbox):
    sb, u1 = sandbox, sandbox.acc["u1"]
    sb.set_aliases("postmaster: %s\n*: *@[203.0.113.9]\n" % u1)
    r = sb.run("newaliases")
    assert r.returncode == 0 and b"2 aliases" in r.stderr, r.stderr
    rc, out = bv(sb, "stranger")
    # "*@domain" forwards the name to the same name there
    assert rc == 0 and "remote stranger@[203.0.113.9]" in out, out
    rc, out = bv(sb, u1)
    assert rc == 0 and "mailbox %s" % u1 in out and "203.0.113.9" not in out, out


def test_catchall_loop_is_unknown(sandbox):
    sb, u1 = sandbox, sandbox.acc["u1"]
    # a catch-all naming an unknown name is not caught again
    sb.set_aliases("postmaster: %s\n*: also-unknown-po\n" % u1)
    rc, out = bv(sb, "stranger")
    assert rc == 67 and "5.1.1" in out, out


def test_catchall_before_first_newaliases(sandbox):
    sb, u1 = sandbox, sandbox.acc["u1"]
    # the text file is read while the database has never been built
    os.unlink(sb.aliases + ".db") if os.path.exists(sb.aliases + ".db") else None
    sb.set_aliases("postmaster: %s\n*: %s\n" % (u1, u1), build=False)
    rc, out = bv(sb, "stranger")
    assert rc == 0 and "mailbox %s" % u1 in out, out


# ---- header qualification ----

QUALIFY_MSG = (
    "From: root\n"
    "Sender: Bob Smith <bob>\n"
    "Reply-To: \"Smith, Bob\" <bob> (home)\n"
    "To: %(u1)s, Carol <carol@elsewhere.example>,\n"
    "\tdave (Dave D)\n"
    "Cc: friends: erin, frank@x.example;, undisclosed-recipients:;\n"
    "Bcc: \"gina smith\"\n"
    "Resent-To: <henry>\n"
    "Resent-From: ivan\n"
    "Resent-Cc: <@relay.example:jack>\n"
    "Resent-Sender: \"Kim\" <kim>\n"
    "Resent-Bcc: liam\n"
    "X-Other: mary\n"
    "Subject: qualify\n"
    "\n"
    "To: not a header\n")


def header(msg, name):
    """The raw (unfolded) value of the first field name."""
    return " ".join(v.replace("\n", "").split()) if (v := msg.get(name)) is not None else None


def test_headers_qualified(sandbox):
    sb, u1, h = sandbox, sandbox.acc["u1"], sandbox.hostname
    sendmail(sb, u1, message=QUALIFY_MSG % {"u1": u1})
    m = sb.wait_for_mail(u1)[0]
    assert header(m, "From") == "root@%s" % h
    assert header(m, "Sender") == "Bob Smith <bob@%s>" % h
    assert header(m, "Reply-To") == "\"Smith, Bob\" <bob@%s> (home)" % h
    assert header(m, "To") == "%s@%s, Carol <carol@elsewhere.example>, dave@%s (Dave D)" % (
        u1, h, h)
    assert header(m, "Cc") == "friends: erin@%s, frank@x.example;, undisclosed-recipients:;" % h
    assert header(m, "Bcc") == "\"gina smith\""  # quoted local part: left
    assert header(m, "Resent-To") == "<henry@%s>" % h
    assert header(m, "Resent-From") == "ivan@%s" % h
    assert header(m, "Resent-Cc") == "<@relay.example:jack@%s>" % h
    assert header(m, "Resent-Sender") == "\"Kim\" <kim@%s>" % h
    assert header(m, "Resent-Bcc") == "liam@%s" % h
    assert header(m, "X-Other") == "mary"
    assert "To: not a header" in m.get_payload()  # the body is never touched
    # the fold is kept where it was
    raw = open(sb.mbox_path(u1), "rb").read()
    assert b"Carol <carol@elsewhere.example>,\n\tdave@%s (Dave D)\n" % h.encode() in raw


def test_headers_qualified_with_t(sandbox):
    sb, u1, h = sandbox, sandbox.acc["u1"], sandbox.hostname
    r = sb.sendmail("-t", "-i", message="To: Me <%s>\nCc: %s+cc\nBcc: %s+bcc\nSubject: t\n\nx\n"
                    % (u1, u1, u1))
    assert r.returncode == 0, r.stderr
    # three recipients, one mailbox: one copy (the queue runner delivers a
    # message once to a target)
    m = sb.wait_for_mail(u1)[0]
    assert header(m, "To") == "Me <%s@%s>" % (u1, h)
    assert header(m, "Cc") == "%s+cc@%s" % (u1, h)
    assert m.get("Bcc") is None  # -t removes it, as before
    assert sb.wait_queue_empty()


def test_headers_untouched_cases(sandbox):
    sb, u1 = sandbox, sandbox.acc["u1"]
    msg = ("From: Someone <someone@example.org>\n"
           "To: undisclosed-recipients:;\n"
           "Cc: \"bob smith\", broken <unclosed\n"
           "Reply-To: <>\n"
           "Subject: untouched\n\nx\n")
    sendmail(sb, u1, message=msg)
    raw = open(sb.wait_for_mail(u1) and sb.mbox_path(u1)).read()
    for line in msg.split("\n\n")[0].split("\n"):
        assert line + "\n" in raw, line


def test_qualify_headers_off(sandbox):
    sb, u1 = sandbox, sandbox.acc["u1"]
    sb.write_config(qualify_headers=0)
    sendmail(sb, u1, message="To: bob\nCc: Bob <bob>\nSubject: off\n\nx\n")
    m = sb.wait_for_mail(u1)[0]
    assert header(m, "To") == "bob" and header(m, "Cc") == "Bob <bob>"


def test_smtp_mail_not_qualified(sandbox):
    sb, u1 = sandbox, sandbox.acc["u1"]
    sb.start_daemon()
    smtp_send(sb, ["%s@%s" % (u1, sb.hostname)], "from-smtp",
              headers="To: bob\r\nCc: Bob <bob>\r\n")
    m = sb.wait_for_mail(u1)[0]
    assert header(m, "To") == "bob" and header(m, "Cc") == "Bob <bob>"


def test_forward_plus_tag(sandbox, accounts):
    """~/.forward+TAG is read for user+TAG before ~/.forward (as Postfix's
    forward_path does); another tag falls back to ~/.forward; a tag that
    cannot be a file name reads no file of that name."""
    if not IS_ROOT:
        pytest.skip(".forward tests need root (a test account with its own home)")
    sb, u1, u2 = sandbox, accounts["u1"], accounts["u2"]
    pw = pwd.getpwnam(u2)
    made = []

    def forward(name, text):
        path = os.path.join(pw.pw_dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chown(path, pw.pw_uid, pw.pw_gid)
        os.chmod(path, 0o644)
        made.append(path)

    try:
        forward(".forward+lists", "%s\n" % u1)  # lists mail goes to u1
        forward(".forward", "\\%s\n" % u2)      # everything else: u2's own mailbox
        forward(".forward+.hidden", "%s\n" % u1)  # never read: a leading dot
        sendmail(sb, "%s+lists" % u2, message="Subject: lists\n\nx\n")
        sendmail(sb, "%s+LISTS" % u2, message="Subject: lists-upper\n\nx\n")
        sendmail(sb, "%s+other" % u2, message="Subject: other\n\nx\n")
        sendmail(sb, "%s+.hidden" % u2, message="Subject: hidden\n\nx\n")
        sendmail(sb, u2, message="Subject: plain\n\nx\n")
        assert subjects(sb.wait_for_mail(u1, 2)) == ["lists", "lists-upper"]
        assert subjects(sb.wait_for_mail(u2, 3)) == ["hidden", "other", "plain"]
        assert sb.wait_queue_empty()
        rc, out = bv(sb, "%s+lists" % u2)
        assert rc == 0 and "mailbox %s" % u1 in out, out
    finally:
        for p in made:
            os.unlink(p)
