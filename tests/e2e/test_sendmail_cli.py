"""The sendmail command line as scripts, cron and mail user agents drive it: one
table row per form sendmail(8) accepts (or refuses), run by root (straight into the
queue) and by an ordinary user (through the maildrop), with the delivered mailbox
read by python's mailbox module.  Also: header blocks without their last line end,
size= and minfree= for local submission, runq by a non-owner, the send-mail name."""
import os
import pwd
import subprocess

import pytest

from conftest import IS_ROOT, ROOT

BODY = "Subject: s\n\nbody\n"
DOTTED = "Subject: s\n\none\n.\ntwo\n"
TO_U2 = "To: {u2}\nSubject: t\n\none\n.\ntwo\n"


class Row:
    """argv and stdin ({u1} {u2} {host} filled in); code: the exit status; to: who
    gets one message each; check(msgs, ctx): what they must hold; err/out: text
    stderr/stdout must hold.  user_code/user_err: when an ordinary user differs."""

    def __init__(self, id, argv, stdin=BODY, code=0, to=("u2",), check=None, err=None,
                 out=None, queued_only=False, user_code=None, user_err=None):
        self.id, self.argv, self.stdin, self.code = id, argv, stdin, code
        self.to = to if code == 0 else ()
        self.check, self.err, self.out = check, err, out
        self.queued_only = queued_only
        self.user_code = code if user_code is None else user_code
        self.user_err = err if user_err is None else user_err


def payload(want):
    def check(msgs, ctx):
        assert msgs["u2"][0].get_payload() == want
    return check


def header(name, want):
    def check(msgs, ctx):
        got = msgs["u2"][0][name]
        assert got == want.format(**ctx), (name, got)
    return check


def sender_is(addr):
    """Envelope sender as asked (root) or the caller with a warning (a user)."""
    def check(msgs, ctx):
        m = msgs["u2"][0]
        if ctx["as_user"]:
            assert m["Return-Path"] == "<{u1}@{host}>".format(**ctx)
            assert addr in m["X-Authentication-Warning"]
        else:
            assert m["Return-Path"] == f"<{addr}>"
            assert m["X-Authentication-Warning"] is None
    return check


def both(*checks):
    def check(msgs, ctx):
        for c in checks:
            c(msgs, ctx)
    return check


NOT_ADDRESS = "may not start with | or /"

ROWS = [
    Row("plain", ["{u2}"], check=payload("body\n")),
    Row("dash-dash", ["--", "{u2}"], check=payload("body\n")),
    Row("dot-ends-input", ["{u2}"], DOTTED, check=payload("one\n")),
    Row("-i", ["-i", "{u2}"], DOTTED, check=payload("one\n.\ntwo\n")),
    Row("-oi", ["-oi", "{u2}"], DOTTED, check=payload("one\n.\ntwo\n")),
    Row("-o i", ["-o", "i", "{u2}"], DOTTED, check=payload("one\n.\ntwo\n")),
    Row("-OIgnoreDots", ["-OIgnoreDots", "{u2}"], DOTTED, check=payload("one\n.\ntwo\n")),
    Row("-O IgnoreDots=true", ["-O", "IgnoreDots=true", "{u2}"], DOTTED,
        check=payload("one\n.\ntwo\n")),
    Row("-O IgnoreDots=false", ["-O", "IgnoreDots=false", "{u2}"], DOTTED,
        check=payload("one\n")),
    Row("-t", ["-t"], TO_U2, check=payload("one\n")),
    Row("-ti", ["-ti"], TO_U2, check=payload("one\n.\ntwo\n")),
    Row("-it", ["-it"], TO_U2, check=payload("one\n.\ntwo\n")),
    Row("-tim", ["-tim"], TO_U2, check=payload("one\n.\ntwo\n")),
    Row("-toi", ["-toi"], TO_U2, check=payload("one\n.\ntwo\n")),
    Row("-t -i", ["-t", "-i"], TO_U2, check=payload("one\n.\ntwo\n")),
    Row("-t plus argv", ["-ti", "{u1}"], TO_U2, to=("u2", "u1")),
    Row("-t bcc removed", ["-ti"], "To: {u2}\nBcc: {u1}\nSubject: b\n\nx\n", to=("u2", "u1"),
        check=lambda msgs, ctx: [m["Bcc"] is None or pytest.fail("Bcc kept")
                                 for ms in msgs.values() for m in ms]),
    Row("-t no To", ["-ti"], "Subject: none\n\nx\n", code=64, err="no recipients"),
    Row("-t pipe in To", ["-ti"], "To: {u2}, |cat@example.org\n\nx\n", code=65,
        err=NOT_ADDRESS),
    Row("-t file in Cc", ["-ti"], "To: {u2}\nCc: /tmp/x@{host}\n\nx\n", code=65, err=NOT_ADDRESS),
    Row("-t junk in To", ["-ti"], "To: {u2}, a@b@c\n\nx\n", code=65, err="bad recipient address"),
    Row("-t group", ["-ti"], "To: friends: {u2};\nCc: undisclosed-recipients:;\n\nx\n"),
    Row("-f addr", ["-i", "-f", "boss@example.org", "{u2}"], check=sender_is("boss@example.org")),
    Row("-faddr", ["-i", "-fboss@example.org", "{u2}"], check=sender_is("boss@example.org")),
    Row("-r addr", ["-i", "-r", "boss@example.org", "{u2}"], check=sender_is("boss@example.org")),
    Row("-tif grouped", ["-tif", "boss@example.org"], TO_U2, check=sender_is("boss@example.org")),
    Row("-f <>", ["-i", "-f", "<>", "{u2}"]),
    Row("-f bad", ["-i", "-f", "a b@@c", "{u2}"], code=65, err="bad sender address"),
    Row("-f no value", ["-f"], code=64, err="option -f needs a value"),
    Row("-F", ["-i", "-F", "Jane Q. Public", "{u2}"],
        check=header("From", '"Jane Q. Public" <{sender}@{host}>')),
    Row("-Fattached", ["-i", "-FJane", "{u2}"], check=header("From", "Jane <{sender}@{host}>")),
    Row("-F comma kept", ["-i", "-F", "Doe, John", "{u2}"],
        check=header("From", '"Doe, John" <{sender}@{host}>')),
    Row("-F with -f", ["-i", "-F", "The Boss", "-f", "boss@example.org", "{u2}"],
        check=header("From", "The Boss <boss@example.org>")),
    Row("-f with -F", ["-i", "-f", "boss@example.org", "-F", "The Boss", "{u2}"],
        check=header("From", "The Boss <boss@example.org>")),
    Row("-F keeps From", ["-i", "-F", "X", "{u2}"], "From: me@example.org\n\nx\n",
        check=header("From", "me@example.org")),
    Row("-bm", ["-bm", "-i", "{u2}"], check=payload("body\n")),
    Row("-b m", ["-b", "m", "-i", "{u2}"], check=payload("body\n")),
    Row("-v", ["-v", "-i", "{u2}"], check=payload("body\n")),
    Row("-odq", ["-odq", "-i", "{u2}"], queued_only=True),
    Row("-O DeliveryMode=queue", ["-O", "DeliveryMode=queue", "-i", "{u2}"], queued_only=True),
    Row("-N never", ["-N", "never", "-i", "{u2}"]),
    Row("-Nsuccess,failure", ["-Nsuccess,failure", "-i", "{u2}"]),
    Row("-N bad", ["-N", "sometimes", "-i", "{u2}"], code=64, err="-N takes never"),
    Row("-R hdrs", ["-R", "hdrs", "-i", "{u2}"]),
    Row("-Rfull", ["-Rfull", "-i", "{u2}"]),
    Row("-B 8BITMIME", ["-B", "8BITMIME", "-i", "{u2}"]),
    Row("-B8BITMIME", ["-B8BITMIME", "-i", "{u2}"]),
    Row("-X file", ["-X", "/dev/null", "-i", "{u2}"]),
    Row("-L -h -A", ["-L", "tag", "-h", "10", "-Am", "-i", "{u2}"]),
    Row("-mnUG", ["-mnUG", "-i", "{u2}"]),
    Row("-oem -odb", ["-oem", "-odb", "-oep", "-i", "{u2}"]),
    Row("-C is ours", ["-i", "{u2}"]),  # every row passes -C: the sandbox's file
    Row("-o option=value", ["-o", "max-rcpts=5", "-i", "{u2}"]),
    Row("-V", ["-V"], code=0, to=(), out="postoffice "),
    Row("-Vx", ["-Vx"], code=64, err="-V takes no value"),
    Row("-bv", ["-bv", "{u2}"], code=0, to=(), out="deliverable: local"),
    Row("-bv unknown", ["-bv", "no-such-user-po"], code=67, to=(), out="undeliverable"),
    Row("-bx", ["-bx"], code=64, err="unknown mode"),
    Row("-Z", ["-Z", "{u2}"], code=64, err="unknown option -Z"),
    Row("-tZ", ["-tZ"], code=64, err="unknown option -Z"),
    Row("no recipients", ["-i"], code=64, err="no recipients"),
    Row("-bs", ["-bs"], "HELO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<{u2}>\r\nDATA\r\n"
        "Subject: bs\r\n\r\nover smtp\r\n.\r\nQUIT\r\n", out="250 2.0.0",
        check=payload("over smtp\n")),
    Row("-bp", ["-bp"], to=(), out="Mail queue is empty", user_code=77,
        user_err="root or the queue owner"),
    Row("-q", ["-q"], to=(), user_code=77, user_err="only root or the queue owner"),
    Row("-bq", ["-bq"], to=(), user_code=77, user_err="only root or the queue owner"),
    Row("-bi", ["-bi"], to=(), err="aliases", user_code=73, user_err="aliases.db"),
    Row("-I", ["-I"], to=(), err="aliases", user_code=73, user_err="aliases.db"),
    # a recipient that is not an address refuses everything, good ones too
    Row("file rcpt", ["-i", "--", "{u2}", "/x@{host}"], code=65, err=NOT_ADDRESS),
    Row("pipe rcpt", ["-i", "{u2}", "|x@example.org"], code=65, err=NOT_ADDRESS),
    Row("quoted file rcpt", ["-i", "{u2}", '"/tmp/a"@{host}'], code=65, err=NOT_ADDRESS),
    Row("bare pipe rcpt", ["-i", "{u2}", "|cat"], code=65, err="bad recipient address"),
    Row("option-like rcpt", ["-i", "--", "{u2}", "-oQ"], code=65, err="bad recipient address"),
    Row("syntax", ["-i", "{u2}", "bad address@@x"], code=65, err="bad recipient address"),
]


def leftovers(sandbox):
    md = os.path.join(sandbox.queue, "maildrop")
    return sandbox.queue_files() + sorted(os.listdir(md))


@pytest.mark.parametrize("who", ["root", "user"])
@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_command_line(sandbox, accounts, row, who):
    as_user = who == "user"
    if as_user and not IS_ROOT:
        pytest.skip("needs root to run sendmail as an ordinary account")
    ctx = {"u1": accounts["u1"], "u2": accounts["u2"], "host": sandbox.hostname,
           "as_user": as_user}
    ctx["sender"] = ctx["u1"] if as_user else pwd.getpwuid(os.getuid()).pw_name
    argv = [a.format(**ctx) for a in row.argv]
    r = sandbox.sendmail(*argv, message=row.stdin.format(**ctx),
                         user=accounts["u1"] if as_user else None)
    code, err = (row.user_code, row.user_err) if as_user else (row.code, row.err)
    assert r.returncode == code, r.stderr
    if err:
        assert err in r.stderr.decode(), r.stderr
        assert r.stderr.count(b"\n") == 1, r.stderr  # one line saying what to fix
    if row.out and code == 0:
        assert row.out in r.stdout.decode(), r.stdout
    if code != 0:
        assert leftovers(sandbox) == []
        sandbox.runq()
        for u in ("u1", "u2"):
            assert sandbox.mbox(accounts[u]) == [], u
        return
    if row.queued_only:
        assert sandbox.mbox(accounts["u2"]) == []
        assert leftovers(sandbox)
    sandbox.runq()
    msgs = {}
    for u in row.to:
        msgs[u] = sandbox.wait_for_mail(accounts[u], row.to.count(u))
        assert len(msgs[u]) == row.to.count(u), u
    if row.check:
        row.check(msgs, ctx)
    assert sandbox.wait_queue_empty()


# ---- header blocks without their last line end ----

@pytest.mark.parametrize("text,subject,body", [
    ("Subject: x", "x", ""),
    ("Subject: x\r", "x", ""),
    ("Subject: x\n", "x", ""),
    ("Subject: x\r\n", "x", ""),
    ("Subject: x\nTo: y", "x", ""),
    ("Subject: x\r\nTo: y", "x", ""),
    ("Subject: x\r\nTo: y\r\n", "x", ""),
    ("Subject: x\n\nbody", "x", "body\n"),
    ("Subject: x\r\n\r\nbody", "x", "body\n"),
    ("Subject: x\nbody line without the empty line\n", "x",
     "body line without the empty line\n"),
    ("hello", None, "hello\n"),
    ("Subject", None, "Subject\n"),
])
def test_no_final_newline(sandbox, accounts, text, subject, body):
    u = accounts["u2"]
    r = sandbox.sendmail("-i", u, message=text)
    assert r.returncode == 0, r.stderr
    m = sandbox.wait_for_mail(u)[0]
    assert m["Subject"] == subject
    for h in ("Date", "Message-ID", "From"):
        assert len(m.get_all(h)) == 1, (h, str(m))
    assert m["Date"].split()[-1][0] in "+-"  # not glued to another field
    assert "\r" not in str(m)
    assert m.get_payload() == body


def test_no_final_newline_with_t(sandbox, accounts):
    u = accounts["u2"]
    r = sandbox.sendmail("-t", message=f"Subject: x\nTo: {u}")
    assert r.returncode == 0, r.stderr
    m = sandbox.wait_for_mail(u)[0]
    assert m["To"] == u + "@" + sandbox.hostname and m["Subject"] == "x"  # qualified
    assert len(m.get_all("Date")) == 1


# ---- size= and minfree= on the local way in ----

@pytest.mark.parametrize("who", ["root", "user"])
def test_size_limit_while_reading(sandbox, accounts, who):
    if who == "user" and not IS_ROOT:
        pytest.skip("needs root to run sendmail as an ordinary account")
    user = accounts["u1"] if who == "user" else None
    u = accounts["u2"]
    sandbox.write_config(size="100k")
    big = "Subject: big\n\n" + ("x" * 99 + "\n") * 2000  # 200 KB
    r = sandbox.sendmail("-i", u, message=big, user=user)
    assert r.returncode == 65, r.stderr
    assert b"message too large (limit 100000 bytes" in r.stderr
    assert r.stderr.count(b"\n") == 1
    assert leftovers(sandbox) == []
    # a long header block counts too
    r = sandbox.sendmail("-i", u, message="Subject: " + "h" * 200000 + "\n\nx\n", user=user)
    assert r.returncode == 65, r.stderr
    assert leftovers(sandbox) == []
    # under the limit: delivered
    r = sandbox.sendmail("-i", u, message="Subject: small\n\n" + "y" * 1000 + "\n", user=user)
    assert r.returncode == 0, r.stderr
    sandbox.runq()
    got = sandbox.wait_for_mail(u)
    assert len(got) == 1 and got[0]["Subject"] == "small"


def test_minfree_before_accepting(sandbox, accounts):
    u = accounts["u2"]
    sandbox.write_config(minfree="1000000000")  # KB: more than any disk here
    r = sandbox.sendmail("-i", u, message=BODY)
    assert r.returncode == 75, r.stderr
    assert b"minfree" in r.stderr and b"nothing was queued" in r.stderr
    assert leftovers(sandbox) == []


def test_minfree_while_the_message_grows(sandbox, accounts):
    if not IS_ROOT:
        pytest.skip("needs root to mount a small tmpfs for the queue")
    u = accounts["u2"]
    q = sandbox.queue
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0711", "tmpfs", q],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount tmpfs: %s" % r.stderr.decode().strip())
    try:
        sandbox.write_config(minfree="2048")  # KB
        assert sandbox.runq().returncode == 0  # the queue's directories, on the tmpfs
        small = "Subject: small\n\n" + ("x" * 99 + "\n") * 10000  # 1 MB: fits
        r = sandbox.sendmail("-i", "-odq", u, message=small)
        assert r.returncode == 0, r.stderr
        big = "Subject: big\n\n" + ("x" * 99 + "\n") * 30000  # 3 MB: free drops below 2 MB
        r = sandbox.sendmail("-i", "-odq", u, message=big)
        assert r.returncode == 75, r.stderr
        assert b"minfree" in r.stderr
        assert len(sandbox.queue_files()) == 1  # the small one; nothing half-written
        assert [f for f in os.listdir(q) if f.startswith("tf")] == []
        sandbox.runq()
        got = sandbox.wait_for_mail(u)
        assert [m["Subject"] for m in got] == ["small"]
    finally:
        subprocess.run(["umount", q])


# ---- runq by someone else, the send-mail name ----

def test_runq_by_non_owner_says_who_may(sandbox, accounts):
    if not IS_ROOT:
        pytest.skip("needs root to run runq as an ordinary account")
    r = sandbox.run("runq", user=accounts["u1"])
    assert r.returncode == 77
    err = r.stderr.decode()
    assert err.count("\n") == 1, err
    assert "only root or the queue owner (%s) may run the queue" % accounts["spool"] in err
    assert "Success" not in err


def test_send_mail_name_delivers(sandbox, accounts):
    u = accounts["u2"]
    r = sandbox.run("send-mail", "-ti", input=f"To: {u}\nSubject: sm\n\nx\n")
    assert r.returncode == 0, r.stderr
    assert sandbox.wait_for_mail(u)[0]["Subject"] == "sm"


def test_install_makes_the_send_mail_link(tmp_path):
    dest = str(tmp_path / "stage")
    r = subprocess.run(["make", "-s", "install", f"DESTDIR={dest}"], cwd=ROOT,
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    links = [os.path.join(d, f) for d, _, fs in os.walk(dest) for f in fs
             if f == "send-mail"]
    assert len(links) == 1 and os.path.islink(links[0])
    assert os.path.realpath(links[0]).endswith("/postoffice")
    r = subprocess.run(["make", "-s", "uninstall", f"DESTDIR={dest}"], cwd=ROOT,
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    assert [f for _, _, fs in os.walk(dest) for f in fs] == []


# ---- the same check at the SMTP door (sendmail -bs) ----

@pytest.mark.parametrize("path", ["<|touch${{IFS}}{flag}@example.org>",
                                  "</{flag}@example.org>", '<"|touch"@example.org>'])
def test_smtp_refuses_program_and_file_forms(sandbox, accounts, path):
    flag = "/tmp/po-ran-%d" % os.getpid()  # short: a local part has 64 characters
    rcpt = path.format(flag=flag)
    dialog = (f"HELO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:{rcpt}\r\n"
              f"RCPT TO:<{accounts['u2']}>\r\nDATA\r\nSubject: smtp\r\n\r\nx\r\n.\r\nQUIT\r\n")
    r = sandbox.sendmail("-bs", message=dialog)
    out = r.stdout.decode()
    assert "553 5.1.3 bad recipient address: an address may not start with | or /" in out, out
    assert "250 2.0.0" in out, out  # the good recipient still gets it
    sandbox.runq()
    assert len(sandbox.wait_for_mail(accounts["u2"])) == 1
    assert not os.path.exists(flag) and not os.path.exists(flag + "@example.org")
    r = sandbox.sendmail("-bs", message=f"HELO x\r\nMAIL FROM:{rcpt}\r\nQUIT\r\n")
    assert "553" in r.stdout.decode() or "501" in r.stdout.decode(), r.stdout
