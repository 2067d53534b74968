"""The sendmail front end, as scripts and cron use it, through to the mailbox."""
import email
import email.policy
import os
import pwd
import stat
import subprocess

import pytest

from conftest import IS_ROOT


def msg(to="x", subject="hello", body="body text\n", extra=""):
    return f"To: {to}\nSubject: {subject}\n{extra}\n{body}"


def test_version(sandbox):
    r = sandbox.run("sendmail", "-V")
    assert r.returncode == 0
    assert r.stdout.decode().startswith("postoffice ")


def test_plain_delivery_with_generated_headers(sandbox, accounts):
    u = accounts["u1"]
    r = sandbox.sendmail("-oi", u, message=msg(to=u))
    assert r.returncode == 0, r.stderr
    msgs = sandbox.wait_for_mail(u)
    assert len(msgs) == 1
    m = msgs[0]
    assert m["Subject"] == "hello"
    assert m["Date"] and m["Message-ID"] and m["From"]
    assert m["Return-Path"]
    assert m["Delivered-To"]
    assert m.get_payload() == "body text\n"
    # the Date: has a numeric zone (RFC 5322)
    assert m["Date"].split()[-1][0] in "+-"
    assert sandbox.wait_queue_empty()


def test_headers_added_only_once(sandbox, accounts):
    u = accounts["u1"]
    sandbox.sendmail("-odq", "-i", u, message=msg(to=u))
    for _ in range(2):
        sandbox.runq()
    msgs = sandbox.wait_for_mail(u)
    assert len(msgs) == 1
    for h in ("Date", "Message-ID", "From"):
        assert len(msgs[0].get_all(h)) == 1


def test_no_header_at_all(sandbox, accounts):
    u = accounts["u1"]
    r = sandbox.sendmail("-i", u, message="just a body line\nand another\n")
    assert r.returncode == 0, r.stderr
    m = sandbox.wait_for_mail(u)[0]
    assert m["Message-ID"]
    assert "just a body line\nand another\n" in m.get_payload()


def test_extract_recipients_and_bcc_removed(sandbox, accounts):
    u1, u2 = accounts["u1"], accounts["u2"]
    text = f"To: Someone <{u1}@{sandbox.hostname}>\nBcc: {u2}\nSubject: t\n\nhi\n"
    r = sandbox.sendmail("-t", "-i", message=text)
    assert r.returncode == 0, r.stderr
    want = 2 if u1 == u2 else 1
    m1 = sandbox.wait_for_mail(u1, want)
    assert len(m1) == want
    for m in m1:
        assert m["Bcc"] is None
    if u1 != u2:
        m2 = sandbox.wait_for_mail(u2)
        assert len(m2) == 1 and m2[0]["Bcc"] is None


def test_lone_dot_ends_input_without_i(sandbox, accounts):
    u = accounts["u1"]
    sandbox.sendmail(u, message=msg(to=u, body="one\n.\ntwo\n"))
    m = sandbox.wait_for_mail(u)[0]
    assert m.get_payload() == "one\n"


def test_lone_dot_kept_with_oi(sandbox, accounts):
    u = accounts["u1"]
    sandbox.sendmail("-oi", u, message=msg(to=u, body="one\n.\ntwo\n"))
    m = sandbox.wait_for_mail(u)[0]
    assert m.get_payload() == "one\n.\ntwo\n"


def test_crlf_input_normalised(sandbox, accounts):
    u = accounts["u1"]
    sandbox.sendmail("-i", u, message="Subject: crlf\r\n\r\nline\r\n")
    m = sandbox.wait_for_mail(u)[0]
    assert m["Subject"] == "crlf"
    assert m.get_payload() == "line\n"


def test_from_escaping(sandbox, accounts):
    u = accounts["u1"]
    sandbox.sendmail("-i", u, message=msg(to=u, body="From here\nnot From\n"))
    sandbox.wait_for_mail(u)
    with open(sandbox.mbox_path(u)) as f:
        raw = f.read()
    assert ">From here\n" in raw
    assert raw.endswith("\n\n")
    m = sandbox.wait_for_mail(u)[0]
    assert "not From" in m.get_payload()


def test_no_recipients_is_usage_error(sandbox):
    r = sandbox.sendmail("-i", message=msg())
    assert r.returncode == 64
    assert b"no recipients" in r.stderr
    assert sandbox.queue_files() == []


def test_bad_address(sandbox):
    r = sandbox.sendmail("-i", "bad address@@x", message=msg())
    assert r.returncode == 65
    assert b"bad recipient address" in r.stderr
    assert sandbox.queue_files() == []


def test_unknown_flag(sandbox):
    r = sandbox.sendmail("-Z", "x", message=msg())
    assert r.returncode == 64
    assert b"unknown option -Z" in r.stderr


@pytest.mark.parametrize("flag", [["-odb"], ["-odi"], ["-oem"], ["-oee"], ["-B", "8BITMIME"],
                                  ["-N", "failure,delay"], ["-R", "hdrs"], ["-X", "/dev/null"],
                                  ["-L", "tag"], ["-h", "10"], ["-m"], ["-n"], ["-U"], ["-G"],
                                  ["-A", "m"], ["-F", "Full Name"]])
def test_ignored_flags_accepted(sandbox, accounts, flag):
    u = accounts["u1"]
    r = sandbox.sendmail(*flag, "-i", u, message=msg(to=u))
    assert r.returncode == 0, r.stderr
    assert len(sandbox.wait_for_mail(u)) == 1


def test_queue_only_then_mailq_and_runq(sandbox, accounts):
    u = accounts["u1"]
    r = sandbox.mailq()
    assert r.returncode == 0, r.stderr
    assert b"Mail queue is empty" in r.stdout
    r = sandbox.sendmail("-odq", "-i", u, message=msg(to=u))
    assert r.returncode == 0
    r = sandbox.mailq()
    out = r.stdout.decode()
    assert u in out and "1 request" in out, out
    assert sandbox.mbox(u) == []
    r = sandbox.runq("-v")
    assert r.returncode == 0, r.stderr
    assert len(sandbox.mbox(u)) == 1
    assert b"Mail queue is empty" in sandbox.mailq().stdout


def test_unknown_user_bounces_with_dsn(sandbox, accounts):
    u = accounts["u1"]
    r = sandbox.sendmail("-i", "-f", f"{u}@{sandbox.hostname}", "nosuchuser",
                         message=msg(to="nosuchuser"))
    assert r.returncode == 0, r.stderr
    msgs = sandbox.wait_for_mail(u)
    assert len(msgs) == 1
    b = email.message_from_bytes(msgs[0].as_bytes(), policy=email.policy.default)
    assert b.get_content_type() == "multipart/report"
    parts = list(b.iter_parts())
    ds = [p for p in parts if p.get_content_type() == "message/delivery-status"]
    assert ds, [p.get_content_type() for p in parts]
    text = ds[0].as_string()
    assert "Action: failed" in text
    assert "5.1.1" in text
    assert sandbox.wait_queue_empty()


def test_sendmail_by_ordinary_user(sandbox, accounts):
    if not IS_ROOT:
        pytest.skip("needs root to run sendmail as another account")
    u1, u2 = accounts["u1"], accounts["u2"]
    r = sandbox.sendmail("-i", u2, message=msg(to=u2), user=u1)
    assert r.returncode == 0, r.stderr
    # the maildrop is picked up by the next queue run (the daemon isn't running)
    sandbox.runq()
    m = sandbox.wait_for_mail(u2)
    assert len(m) == 1
    assert m[0]["Return-Path"] == f"<{u1}@{sandbox.hostname}>"
    assert m[0]["X-Authentication-Warning"] is None


def test_f_by_untrusted_user_warns(sandbox, accounts):
    if not IS_ROOT:
        pytest.skip("needs root to run sendmail as another account")
    u1, u2 = accounts["u1"], accounts["u2"]
    r = sandbox.sendmail("-i", "-f", "boss@example.org", u2, message=msg(to=u2), user=u1)
    assert r.returncode == 0, r.stderr
    sandbox.runq()
    m = sandbox.wait_for_mail(u2)[0]
    assert "boss@example.org" in m["X-Authentication-Warning"]


def test_f_by_root_trusted(sandbox, accounts):
    if not IS_ROOT:
        pytest.skip("root only")
    u = accounts["u1"]
    sandbox.sendmail("-i", "-f", "boss@example.org", u, message=msg(to=u))
    m = sandbox.wait_for_mail(u)[0]
    assert m["X-Authentication-Warning"] is None
    assert m["Return-Path"] == "<boss@example.org>"


def test_mail_for_root_without_alias(sandbox, accounts):
    """root's mailbox (0600 root), written by an unprivileged child; no bounce."""
    if not IS_ROOT:
        pytest.skip("root only")
    u = accounts["u1"]
    sandbox.sendmail("-i", "-f", f"{u}@{sandbox.hostname}", "root", message=msg(to="root"))
    b = sandbox.wait_for_mail("root")
    # qualify-headers: the bare name gets our domain (sendmail(8))
    assert len(b) == 1 and b[0]["To"] == "root@" + sandbox.hostname
    st = os.lstat(sandbox.mbox_path("root"))
    assert st.st_uid == 0 and st.st_mode & 0o777 == 0o600
    assert sandbox.mbox(u) == []


def test_mailx_and_formail(sandbox, accounts, tmp_path):
    u = accounts["u1"]
    wrapper = os.path.join(sandbox.bin, "sendmail-wrapper")
    with open(wrapper, "w") as f:
        f.write(f"#!/bin/sh\nexec {sandbox.bin}/sendmail -C {sandbox.cf} \"$@\"\n")
    os.chmod(wrapper, 0o755)
    env = dict(os.environ, MAILRC="/dev/null", HOME=str(tmp_path))
    rc = tmp_path / ".mailrc"
    rc.write_text(f"set sendmail={wrapper}\n")
    env["MAILRC"] = str(rc)
    r = subprocess.run(["mail", "-s", "from mailx", u], input=b"sent with mailx\n",
                       env=env, capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    msgs = sandbox.wait_for_mail(u)
    assert len(msgs) == 1 and msgs[0]["Subject"] == "from mailx"
    # formail splits the mailbox into the same number of messages
    with open(sandbox.mbox_path(u), "rb") as f:
        out = subprocess.run(["formail", "-s", "echo", "x"], stdin=f,
                             capture_output=True, timeout=30)
    assert out.stdout.count(b"x\n") == 1


@pytest.mark.parametrize("opt", ["relay-host=smarthost.example", "forward-all",
                                 "trusted=203.0.113.0/24", "forbidden=accept"])
def test_root_only_options_refused_for_users(sandbox, accounts, opt):
    if not IS_ROOT:
        pytest.skip("needs root to run as an ordinary account")
    r = sandbox.run("sendmail", "-o", opt, "-i", accounts["u2"], input="Subject: x\n\nx\n",
                    user=accounts["u1"])
    assert r.returncode == 77, r.stderr
    assert b"only root may" in r.stderr


def test_bad_config_value_is_ex_config(sandbox, accounts):
    r = sandbox.run("sendmail", "-o", "timeout=soon", "-i", accounts["u1"], input="x\n")
    assert r.returncode == 78
    assert b"timeout" in r.stderr and b"expected" in r.stderr


def test_unknown_option_warns_only(sandbox, accounts):
    r = sandbox.run("sendmail", "-o", "no-such-thing=1", "-i", accounts["u1"],
                    input="Subject: x\n\nx\n")
    assert r.returncode == 0
    assert b"unknown option" in r.stderr


def test_missing_C_file(sandbox):
    r = subprocess.run([sandbox.bin + "/sendmail", "-C", "/nonexistent/po.cf", "x"],
                       input=b"x\n", capture_output=True)
    assert r.returncode == 66


def test_f_by_trusted_user(sandbox, accounts):
    if not IS_ROOT:
        pytest.skip("needs root to run sendmail as another account")
    u1, u2 = accounts["u1"], accounts["u2"]
    sandbox.write_config(trusted_users=u1)
    r = sandbox.sendmail("-i", "-f", "list-bounces@example.org", u2, message=msg(to=u2),
                         user=u1)
    assert r.returncode == 0, r.stderr
    sandbox.runq()
    m = sandbox.wait_for_mail(u2)[0]
    assert m["X-Authentication-Warning"] is None
    assert m["Return-Path"] == "<list-bounces@example.org>"
