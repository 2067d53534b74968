"""Mail filters (filter=): the libmilter test filter (tests/milters/
testmilter.c) checked with miltertest first, then through the real daemon
with python smtplib; delivered mail read with python's mailbox module."""
import os
import re
import shutil
import smtplib
import socket
import subprocess
import time

import pytest

from conftest import ROOT

MILTER = os.path.join(ROOT, "tests", "milters", "testmilter")

pytestmark = pytest.mark.skipif(not os.path.exists(MILTER),
                                reason="tests/milters/testmilter not built "
                                       "(make milters; needs libmilter-dev)")


class Filter:
    def __init__(self, sandbox, mode, arg=None, name="f"):
        self.sock = os.path.join(sandbox.dir, name + ".sock")
        self.log = os.path.join(sandbox.dir, name + ".log")
        argv = [MILTER, "-p", "unix:" + self.sock, "-m", mode, "-l", self.log]
        if arg is not None:
            argv += ["-a", arg]
        self.p = subprocess.Popen(argv, stderr=subprocess.PIPE)
        deadline = time.time() + 10
        while not os.path.exists(self.sock) and time.time() < deadline:
            time.sleep(0.02)
        assert os.path.exists(self.sock), "testmilter did not start"

    def events(self):
        try:
            with open(self.log) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()  # libmilter waits seconds for its threads on SIGTERM
            self.p.wait()


@pytest.fixture
def filters(sandbox):
    made = []

    def start(mode, arg=None, name="f"):
        f = Filter(sandbox, mode, arg, name)
        made.append(f)
        return f
    yield start
    for f in made:
        f.stop()


@pytest.fixture(autouse=True)
def _no_load_limit(sandbox):
    sandbox.write_config(load=0)


def msg(subject="hello", extra="", body="Body line one.\nBody line two.\n"):
    return ("From: sender@example.org\nTo: someone@example.org\n"
            f"Subject: {subject}\n{extra}\n{body}")


def send(sandbox, rcpts, message=None, sender="sender@example.org"):
    """Returns (code, text) of the end of data, or raises for earlier refusals."""
    s = smtplib.SMTP("127.0.0.1", sandbox.port, timeout=60)
    try:
        s.ehlo("client.example.org")
        code, text = s.mail(sender)
        if code != 250:
            return code, text.decode()
        for r in rcpts:
            s.rcpt(r)
        code, text = s.data(message or msg())
        return code, text.decode()
    finally:
        try:
            s.quit()
        except Exception:
            pass


def daemon(sandbox, *specs, **opts):
    sandbox.write_config(filter=list(specs), **opts)
    sandbox.start_daemon()


# ---- the test filter itself, checked with miltertest ----

LUA_HEAD = """
conn = mt.connect("unix:%(sock)s", 40, 0.05)
if conn == nil then error("connect") end
if mt.conninfo(conn, "client.example.org", "203.0.113.9") ~= nil then error("conninfo") end
if mt.mailfrom(conn, "<a@example.org>") ~= nil then error("mail") end
if mt.rcptto(conn, "<b@example.org>") ~= nil then error("rcpt") end
if mt.header(conn, "Subject", "hi") ~= nil then error("header") end
if mt.header(conn, "X-Remove-Me", "x") ~= nil then error("header2") end
if mt.eoh(conn) ~= nil then error("eoh") end
if mt.bodystring(conn, "body\\r\\n") ~= nil then error("body") end
if mt.eom(conn) ~= nil then error("eom") end
"""

LUA_CHECKS = {
    "pass": 'mt.getreply(conn) == SMFIR_CONTINUE',
    "reject": 'mt.getreply(conn) == SMFIR_REJECT',
    "tempfail": 'mt.getreply(conn) == SMFIR_TEMPFAIL',
    "discard": 'mt.getreply(conn) == SMFIR_DISCARD',
    "replycode": "mt.getreply(conn) == SMFIR_REPLYCODE",
    "headers": 'mt.eom_check(conn, MT_HDRADD, "X-Test-Added") and '
               'mt.eom_check(conn, MT_HDRINSERT, "X-Test-Inserted") and '
               'mt.eom_check(conn, MT_HDRCHANGE, "Subject", "changed by testmilter") and '
               'mt.eom_check(conn, MT_HDRDELETE, "X-Remove-Me")',
    "body": 'mt.eom_check(conn, MT_BODYCHANGE)',
    "addrcpt": 'mt.eom_check(conn, MT_RCPTADD, "<extra@example.org>")',
    "delrcpt": 'mt.eom_check(conn, MT_RCPTDELETE, "<b@example.org>")',
    "quarantine": 'mt.eom_check(conn, MT_QUARANTINE, "held for review")',
}
LUA_ARGS = {"addrcpt": "<extra@example.org>", "delrcpt": "<b@example.org>",
            "quarantine": "held for review"}


@pytest.mark.skipif(not shutil.which("miltertest"), reason="miltertest not installed")
@pytest.mark.parametrize("mode", sorted(LUA_CHECKS))
def test_miltertest_checks_the_test_filter(sandbox, filters, mode):
    f = filters(mode, LUA_ARGS.get(mode))
    script = os.path.join(sandbox.dir, "t.lua")
    with open(script, "w") as fh:
        fh.write(LUA_HEAD % {"sock": f.sock})
        fh.write("if not (%s) then error(\"unexpected result\") end\n" % LUA_CHECKS[mode])
        fh.write("mt.disconnect(conn)\n")
    r = subprocess.run(["miltertest", "-s", script], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()


# ---- configuration ----

@pytest.mark.parametrize("spec", ["/tmp/x.sock", "localhost:8891", "unix:/tmp/x.sock",
                                  "local:/tmp/x.sock", "inet:8891@127.0.0.1",
                                  "inet6:8891@[::1]", "[::1]:8891"])
def test_filter_forms_accepted(sandbox, spec):
    sandbox.write_config(filter=spec)
    r = sandbox.run("postoffice", "-bp")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("opt", ["filter=inet:99999@127.0.0.1", "filter=unix:relative",
                                 "filter=nohostport", "filter-fail=maybe"])
def test_bad_filter_options_refused(sandbox, opt):
    r = sandbox.run("postoffice", "-o", opt, "-bp")
    assert r.returncode == 78, r.stderr  # EX_CONFIG
    assert opt.split("=")[0].encode() in r.stderr


# ---- verdicts through the daemon ----

def test_pass_macros_and_queue_id(sandbox, filters, accounts):
    f = filters("pass")
    daemon(sandbox, "unix:" + f.sock)
    u1 = accounts["u1"]
    code, text = send(sandbox, [u1])
    assert code == 250, text
    qid = re.search(r"queue id (\w+)", text).group(1)
    msgs = sandbox.wait_for_mail(u1)
    assert len(msgs) == 1
    ev = f.events()
    conn = next(e for e in ev if e.startswith("CONNECT"))
    for m in ("j=mx.test.example", "{daemon_name}=mx.test.example",
              "{client_addr}=127.0.0.1", "{client_name}=localhost", "{if_addr}=127.0.0.1"):
        assert m in conn, conn
    assert re.search(r"\{client_port\}=\d+", conn)
    mail = next(e for e in ev if e.startswith("MAIL"))
    assert mail.startswith("MAIL <sender@example.org>")
    assert "{mail_addr}=sender@example.org" in mail
    rcpt = next(e for e in ev if e.startswith("RCPT"))
    assert f"{{rcpt_addr}}={u1}" in rcpt and "{rcpt_mailer}=local" in rcpt
    eom = next(e for e in ev if e.startswith("EOM"))
    assert f"i={qid}" in eom
    # the filter saw our Received: first, then the client's headers, the body
    hdrs = [e for e in ev if e.startswith("HEADER")]
    assert hdrs[0].startswith("HEADER Received: from client.example.org")
    assert "HEADER Subject: hello" in ev
    assert any(e.startswith("BODY") and "Body line one." in e for e in ev)


def test_rcpt_before_mail_never_reaches_filter(sandbox, filters):
    f = filters("pass")
    daemon(sandbox, "unix:" + f.sock)
    s = smtplib.SMTP("127.0.0.1", sandbox.port, timeout=30)
    s.ehlo("client.example.org")
    code, _ = s.rcpt("nobody@example.org")
    assert code == 503
    s.quit()
    time.sleep(0.3)
    assert not any(e.startswith("RCPT") for e in f.events())


@pytest.mark.parametrize("mode,want", [("reject", 554), ("tempfail", 451)])
def test_reject_tempfail_at_end(sandbox, filters, accounts, mode, want):
    f = filters(mode)
    daemon(sandbox, "unix:" + f.sock)
    code, text = send(sandbox, [accounts["u1"]])
    assert code == want, text
    assert sandbox.queue_files() == []
    assert sandbox.mbox(accounts["u1"]) == []


def test_replycode_is_checked_and_never_a_format(sandbox, filters, accounts):
    f = filters("replycode", "go away %s%n%x")
    daemon(sandbox, "unix:" + f.sock)
    code, text = send(sandbox, [accounts["u1"]])
    assert code == 550
    assert text.startswith("5.7.0 go away %s%n%x"), text
    assert sandbox.queue_files() == []


def test_discard(sandbox, filters, accounts):
    f = filters("discard")
    daemon(sandbox, "unix:" + f.sock)
    code, text = send(sandbox, [accounts["u1"]])
    assert code == 250, text
    time.sleep(0.5)
    assert sandbox.queue_files() == [] and sandbox.mbox(accounts["u1"]) == []


def test_rcpt_reject_and_mail_reject(sandbox, filters, accounts):
    f = filters("rcptreject")
    daemon(sandbox, "unix:" + f.sock)
    s = smtplib.SMTP("127.0.0.1", sandbox.port, timeout=30)
    s.ehlo("c.example.org")
    s.mail("a@example.org")
    assert s.rcpt("bad@mx.test.example")[0] == 550
    assert s.rcpt(accounts["u1"])[0] == 250
    assert s.data(msg())[0] == 250
    s.quit()
    assert len(sandbox.wait_for_mail(accounts["u1"])) == 1


def test_connect_reject_answered_at_mail(sandbox, filters):
    f = filters("connreject")
    daemon(sandbox, "unix:" + f.sock)
    s = smtplib.SMTP("127.0.0.1", sandbox.port, timeout=30)
    s.ehlo("c.example.org")
    assert s.mail("a@example.org")[0] == 554
    s.quit()


# ---- modifications ----

def test_headers_changed(sandbox, filters, accounts):
    f = filters("headers")
    daemon(sandbox, "unix:" + f.sock)
    code, text = send(sandbox, [accounts["u1"]],
                      msg(extra="X-Remove-Me: secret\n"))
    assert code == 250, text
    m = sandbox.wait_for_mail(accounts["u1"])[0]
    assert m["X-Test-Added"] == "added by testmilter"
    assert m["Subject"] == "changed by testmilter"
    assert m["X-Remove-Me"] is None
    keys = m.keys()  # (Return-Path: is added by the local delivery)
    assert keys.index("X-Test-Inserted") < keys.index("Received"), keys
    assert "Body line one." in m.get_payload()


def test_body_replaced(sandbox, filters, accounts):
    f = filters("body")
    daemon(sandbox, "unix:" + f.sock)
    code, _ = send(sandbox, [accounts["u1"]])
    assert code == 250
    m = sandbox.wait_for_mail(accounts["u1"])[0]
    assert m.get_payload() == "The body was replaced.\nSecond line.\n"
    assert m["Subject"] == "hello"


def test_add_and_delete_recipient(sandbox, filters, accounts):
    u1, u2 = accounts["u1"], accounts["u2"]
    if u1 == u2:
        pytest.skip("needs two accounts (root)")
    f = filters("addrcpt", f"<{u2}@mx.test.example>")
    daemon(sandbox, "unix:" + f.sock)
    assert send(sandbox, [u1])[0] == 250
    assert len(sandbox.wait_for_mail(u2)) == 1
    assert len(sandbox.wait_for_mail(u1)) == 1


def test_delete_recipient(sandbox, filters, accounts):
    u1, u2 = accounts["u1"], accounts["u2"]
    if u1 == u2:
        pytest.skip("needs two accounts (root)")
    f = filters("delrcpt", f"<{u2}>")
    daemon(sandbox, "unix:" + f.sock)
    assert send(sandbox, [u1, u2])[0] == 250
    assert len(sandbox.wait_for_mail(u1)) == 1
    assert sandbox.wait_queue_empty()
    assert sandbox.mbox(u2) == []


def test_change_sender(sandbox, filters, accounts):
    f = filters("chgfrom", "<changed@example.net>")
    daemon(sandbox, "unix:" + f.sock)
    assert send(sandbox, [accounts["u1"]])[0] == 250
    m = sandbox.wait_for_mail(accounts["u1"])[0]
    assert m.get_from().startswith("changed@example.net "), m.get_from()


def test_quarantine_held_listed_released(sandbox, filters, accounts):
    f = filters("quarantine", "looks like a test")
    daemon(sandbox, "unix:" + f.sock)
    code, text = send(sandbox, [accounts["u1"]])
    assert code == 250
    qid = re.search(r"queue id (\w+)", text).group(1)
    time.sleep(1)
    assert sandbox.mbox(accounts["u1"]) == []
    q = sandbox.mailq().stdout.decode()
    assert qid in q and "quarantined: looks like a test" in q, q
    sandbox.runq()
    assert sandbox.mbox(accounts["u1"]) == []
    r = sandbox.run("postoffice", "-bQ", qid)
    assert r.returncode == 0 and b"released" in r.stdout, r.stderr
    sandbox.runq()
    assert len(sandbox.wait_for_mail(accounts["u1"])) == 1
    r = sandbox.run("postoffice", "-bQ", "NoSuchQid1")
    assert r.returncode != 0 and b"no such message" in r.stderr


def test_skip_flag_honoured(sandbox, filters, accounts):
    f = filters("skip")
    daemon(sandbox, "unix:" + f.sock)
    big = "".join("line %d of a longer body\n" % i for i in range(20000))
    assert send(sandbox, [accounts["u1"]], msg(body=big))[0] == 250
    m = sandbox.wait_for_mail(accounts["u1"])[0]
    assert m["X-Body-Chunks"] == "1"


def test_noreply_headers(sandbox, filters, accounts):
    f = filters("noreply")
    daemon(sandbox, "unix:" + f.sock)
    assert send(sandbox, [accounts["u1"]])[0] == 250
    assert len(sandbox.wait_for_mail(accounts["u1"])) == 1


def test_two_filters_in_order_sendmail_inet_form(sandbox, filters, accounts):
    f1 = filters("headers", name="one")
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    pnum = port.getsockname()[1]
    port.close()
    p = subprocess.Popen([MILTER, "-p", f"inet:{pnum}@127.0.0.1", "-m", "body"])
    try:
        time.sleep(0.5)
        daemon(sandbox, "local:" + f1.sock, f"inet:{pnum}@127.0.0.1")
        assert send(sandbox, [accounts["u1"]])[0] == 250
        m = sandbox.wait_for_mail(accounts["u1"])[0]
        assert m["X-Test-Added"] == "added by testmilter"
        assert m.get_payload().startswith("The body was replaced.")
    finally:
        p.kill()
        p.wait()


# ---- broken filters: filter-fail= ----

@pytest.mark.parametrize("fail,want", [("tempfail", 451), ("accept", 250)])
def test_filter_down(sandbox, accounts, fail, want):
    daemon(sandbox, "unix:" + os.path.join(sandbox.dir, "nobody.sock"), filter_fail=fail)
    code, text = send(sandbox, [accounts["u1"]])
    assert code == want, text


@pytest.mark.parametrize("fail,want", [("tempfail", 451), ("accept", 250)])
def test_filter_stalls_past_deadline(sandbox, filters, accounts, fail, want):
    f = filters("stall")
    daemon(sandbox, "unix:" + f.sock, filter_fail=fail, filter_timeout="2s")
    t0 = time.time()
    code, text = send(sandbox, [accounts["u1"]])
    assert code == want, text
    assert time.time() - t0 < 20


@pytest.mark.parametrize("fail,want", [("tempfail", 451), ("accept", 250)])
def test_filter_dies_mid_message(sandbox, filters, accounts, fail, want):
    f = filters("die")
    daemon(sandbox, "unix:" + f.sock, filter_fail=fail)
    code, text = send(sandbox, [accounts["u1"]])
    assert code == want, text
    if want == 250:
        assert len(sandbox.wait_for_mail(accounts["u1"])) == 1
    else:
        assert sandbox.queue_files() == []


def test_local_submission_filtered_only_by_option(sandbox, filters, accounts):
    f = filters("headers")
    sandbox.write_config(filter="unix:" + f.sock)
    script = (f"EHLO me\r\nMAIL FROM:<root@mx.test.example>\r\nRCPT TO:<{accounts['u1']}>\r\n"
              "DATA\r\nSubject: local\r\n\r\nhi\r\n.\r\nQUIT\r\n")
    r = sandbox.run("postoffice", "-bs", input=script)
    assert b"250 2.0.0 message accepted" in r.stdout, r.stdout
    assert not f.events()
    sandbox.write_config(filter_local=True)
    r = sandbox.run("postoffice", "-bs", input=script)
    assert b"250 2.0.0 message accepted" in r.stdout, r.stdout
    assert any(e.startswith("EOM") for e in f.events())


def test_sendmail_front_end_filtered_by_option(sandbox, filters, accounts):
    f = filters("headers")
    sandbox.write_config(filter="unix:" + f.sock)
    u1 = accounts["u1"]
    r = sandbox.sendmail("-i", u1, message="Subject: one\n\nbody\n")
    assert r.returncode == 0, r.stderr
    assert not f.events()
    sandbox.write_config(filter_local=True)
    r = sandbox.sendmail("-i", u1, message="Subject: two\n\nbody\n")
    assert r.returncode == 0, r.stderr
    ev = f.events()
    conn = next(e for e in ev if e.startswith("CONNECT"))
    assert conn.startswith("CONNECT localhost")
    sandbox.runq()
    msgs = sandbox.wait_for_mail(u1, 2)
    assert len(msgs) == 2
    assert msgs[0]["X-Test-Added"] is None
    assert msgs[1]["X-Test-Added"] == "added by testmilter"
    assert msgs[1]["Subject"] == "changed by testmilter"


@pytest.mark.parametrize("mode,code", [("reject", 69), ("tempfail", 75)])
def test_sendmail_front_end_refused(sandbox, filters, accounts, mode, code):
    f = filters(mode)
    sandbox.write_config(filter="unix:" + f.sock, filter_local=True)
    r = sandbox.sendmail("-i", accounts["u1"], message="Subject: x\n\nbody\n")
    assert r.returncode == code, r.stderr
    assert b"refused by a mail filter" in r.stderr
    assert sandbox.queue_files() == []


def test_sendmail_front_end_quarantine_survives_pickup(sandbox, filters, accounts):
    if accounts["u1"] == accounts["spool"]:
        pytest.skip("needs an ordinary user (root)")
    f = filters("quarantine", "local hold")
    sandbox.write_config(filter="unix:" + f.sock, filter_local=True)
    r = sandbox.sendmail("-i", accounts["u2"], message="Subject: x\n\nbody\n",
                         user=accounts["u1"])
    assert r.returncode == 0, r.stderr
    sandbox.runq()  # picks the maildrop file up
    q = sandbox.mailq().stdout.decode()
    assert "quarantined: local hold" in q, q
    assert sandbox.mbox(accounts["u2"]) == []
