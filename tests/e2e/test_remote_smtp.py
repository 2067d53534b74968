"""Remote delivery: the SMTP client against aiosmtpd and scripted servers.

Delivery runs through tests/bin/po-remote (smtpc_deliver, the code remote_deliver
uses) with relay-host pointing at a loopback port; MX routing over loopback uses
relay-host=NAME:PORT, which is resolved through MX records like a domain.
"""
import socket
import time

import pytest
from aiosmtpd.controller import Controller

from dnsserver import ZoneServer
from remote_util import send
from smtpscript import DROP, STALL, ScriptServer

MSG = (b"From: a@here.test\nTo: b@remote.test\nSubject: hi\n\n"
       b"line one\n.\n.leading dot\n..two dots\nlast\n")


class Collect:
    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 2.0.0 accepted"


@pytest.fixture
def msgfile(tmp_path):
    p = tmp_path / "df"
    p.write_bytes(MSG)
    return p


@pytest.fixture
def aiosmtp():
    h = Collect()
    h.port = _free_port_on(["127.0.0.1"])
    c = Controller(h, hostname="127.0.0.1", port=h.port)
    c.start()
    yield h
    c.stop()


@pytest.fixture
def script():
    servers = []

    def make(**kw):
        s = ScriptServer(**kw).start()
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.stop()


def relay(port, host="127.0.0.1"):
    return [f"relay-host=[{host}]:{port}", "hostname=client.test"]


def clean(text):
    return all(0x20 <= ord(ch) < 0x7f for ch in text)


def test_aiosmtpd_several_recipients_one_transaction(aiosmtp, msgfile):
    rcpts = ["a@remote.test", "b@remote.test", "c@remote.test"]
    res, err, _ = send("s@here.test", msgfile, *rcpts, opts=relay(aiosmtp.port))
    for r in rcpts:
        assert res[r][0] == "sent", res
        assert res[r][1].startswith("2.0.0 250")
    assert len(aiosmtp.envelopes) == 1
    env = aiosmtp.envelopes[0]
    assert env.mail_from == "s@here.test"
    assert env.rcpt_tos == rcpts
    # dot-stuffing undone by the receiver: the text arrives unchanged, CRLF
    assert env.original_content == MSG.replace(b"\n", b"\r\n")
    # one log line per recipient
    for r in rcpts:
        assert f"TESTQID: delivery to=<{r}>, relay=[127.0.0.1]:{aiosmtp.port}, delay=" in err
    assert err.count("status=sent") == 3


@pytest.mark.parametrize("pipelining", [True, False])
def test_per_recipient_results(script, msgfile, pipelining):
    def rcpt(arg):
        if "later" in arg:
            return b"451 4.2.1 try later\r\n"
        if "bad" in arg:
            return b"550 5.1.1 no such user\r\n"
        return b"250 2.1.5 ok\r\n"
    ehlo = b"250-remote.test\r\n" + (b"250-PIPELINING\r\n" if pipelining else b"") + b"250 HELP\r\n"
    s = script(rcpt=rcpt, ehlo=ehlo)
    res, err, _ = send("s@here.test", msgfile, "ok@r.test", "later@r.test", "bad@r.test",
                       "ok2@r.test", opts=relay(s.port))
    assert res["ok@r.test"][0] == "sent"
    assert res["ok2@r.test"][0] == "sent"
    assert res["later@r.test"][0] == "deferred"
    assert res["later@r.test"][1].startswith("4.2.1 451")
    assert res["bad@r.test"][0] == "bounced"
    assert res["bad@r.test"][1] == "5.1.1 550 no such user"
    assert res["bad@r.test"][2] == "[127.0.0.1]"      # Remote-MTA
    assert len(s.messages) == 1
    assert [c for c in s.commands if c.startswith("RCPT")] == [
        "RCPT TO:<ok@r.test>", "RCPT TO:<later@r.test>", "RCPT TO:<bad@r.test>",
        "RCPT TO:<ok2@r.test>"]
    assert s.commands[-1] == "QUIT"
    assert "status=deferred (451 try later)" in err or "status=deferred" in err


def test_no_recipient_accepted_no_data(script, msgfile):
    s = script(rcpt=b"550 5.1.1 nobody\r\n", ehlo=b"250 remote.test\r\n")
    res, _, _ = send("s@here.test", msgfile, "x@r.test", opts=relay(s.port))
    assert res["x@r.test"][0] == "bounced"
    assert "DATA" not in s.commands
    assert s.messages == []


def test_mail_from_refused(script, msgfile):
    s = script(mail=b"553 5.7.1 sender rejected\r\n")
    res, _, _ = send("s@here.test", msgfile, "x@r.test", "y@r.test", opts=relay(s.port))
    assert res["x@r.test"][:2] == ("bounced", "5.7.1 553 sender rejected")
    assert res["y@r.test"][0] == "bounced"
    # pipelined DATA that a (careless) server still answers 354: an empty message
    # goes, never the text
    assert all(m == b"" for m in s.messages)
    s2 = script(mail=b"421 4.3.2 busy\r\n")
    res, _, _ = send("s@here.test", msgfile, "x@r.test", opts=relay(s2.port))
    assert res["x@r.test"][0] == "deferred"


def test_size_declared_too_small(script, msgfile):
    s = script(ehlo=b"250-remote.test\r\n250 SIZE 50\r\n")
    res, _, _ = send("s@here.test", msgfile, "x@r.test", opts=relay(s.port))
    assert res["x@r.test"][0] == "bounced"
    assert res["x@r.test"][1].startswith("5.3.4 ")
    assert not any(c.startswith("MAIL") for c in s.commands)


def test_size_parameter_sent(script, msgfile):
    s = script(ehlo=b"250-remote.test\r\n250 SIZE 100000\r\n")
    res, _, _ = send("s@here.test", msgfile, "x@r.test", opts=relay(s.port))
    assert res["x@r.test"][0] == "sent"
    # the size on the wire: a CR for every LF, plus room for the end
    wire = len(MSG) + MSG.count(b"\n") + 2
    assert f"MAIL FROM:<s@here.test> SIZE={wire}" in s.commands


def test_smtputf8(script, msgfile):
    s = script(ehlo=b"250-remote.test\r\n250 8BITMIME\r\n")
    res, _, _ = send("s@here.test", msgfile, "\u00fcser@r.test", opts=relay(s.port))
    st = res["\u00fcser@r.test"]
    assert st[0] == "bounced" and st[1].startswith("5.6.7 ")
    assert not any(c.startswith("MAIL") for c in s.commands)
    s2 = script(ehlo=b"250-remote.test\r\n250 SMTPUTF8\r\n")
    res, _, _ = send("s@here.test", msgfile, "\u00fcser@r.test", opts=relay(s2.port))
    assert res["\u00fcser@r.test"][0] == "sent"
    assert "MAIL FROM:<s@here.test> SMTPUTF8" in s2.commands


def test_8bitmime(script, msgfile):
    s = script(ehlo=b"250-remote.test\r\n250 8BITMIME\r\n")
    res, _, _ = send("s@here.test", msgfile, "x@r.test", opts=relay(s.port), flags=["-8"])
    assert res["x@r.test"][0] == "sent"
    assert "MAIL FROM:<s@here.test> BODY=8BITMIME" in s.commands
    # a peer without 8BITMIME gets the message as it is (documented), no BODY=
    s2 = script(ehlo=b"250 remote.test\r\n")
    res, err, _ = send("s@here.test", msgfile, "x@r.test", opts=relay(s2.port), flags=["-8"])
    assert res["x@r.test"][0] == "sent"
    assert "MAIL FROM:<s@here.test>" in s2.commands
    assert "does not offer 8BITMIME" in err


def test_8bit_text_detected(script, tmp_path):
    """8-bit bytes in the text get BODY=8BITMIME even when the submitter did not
    declare it (a local sendmail call); 7-bit text never does."""
    f = tmp_path / "df"
    f.write_bytes("Subject: caf\u00e9\n\nd\u00e9j\u00e0 vu\n".encode())
    s = script(ehlo=b"250-remote.test\r\n250 8BITMIME\r\n")
    res, _, _ = send("s@here.test", f, "x@r.test", opts=relay(s.port))
    assert res["x@r.test"][0] == "sent"
    assert "MAIL FROM:<s@here.test> BODY=8BITMIME" in s.commands
    assert s.messages[0] == "Subject: caf\u00e9\r\n\r\nd\u00e9j\u00e0 vu\r\n".encode()


def test_ehlo_refused_falls_back_to_helo(script, msgfile):
    s = script(ehlo=b"502 5.5.1 what\r\n")
    res, _, _ = send("s@here.test", msgfile, "x@r.test", opts=relay(s.port))
    assert res["x@r.test"][0] == "sent"
    assert s.commands[0].startswith("EHLO client.test")
    assert s.commands[1] == "HELO client.test"


@pytest.mark.parametrize("data,dot,outcome,code", [
    (b"554 5.3.0 no data for you\r\n", None, "bounced", "5.3.0"),
    (b"451 4.3.0 not now\r\n", None, "deferred", "4.3.0"),
    (None, b"552 5.3.4 too big after all\r\n", "bounced", "5.3.4"),
    (None, b"451 4.3.0 disk full\r\n", "deferred", "4.3.0"),
])
def test_data_failures(script, msgfile, data, dot, outcome, code):
    kw = {}
    if data:
        kw["data"] = data
    if dot:
        kw["dot"] = dot
    s = script(**kw)
    res, _, _ = send("s@here.test", msgfile, "x@r.test", "y@r.test", opts=relay(s.port))
    for r in ("x@r.test", "y@r.test"):
        assert res[r][0] == outcome
        assert res[r][1].startswith(code)


@pytest.mark.parametrize("where", ["greeting", "ehlo", "mail", "rcpt", "data", "dot"])
def test_stall_times_out(script, msgfile, where):
    s = script(**{where: STALL})
    res, err, _ = send("s@here.test", msgfile, "x@r.test",
                       opts=relay(s.port) + ["timeout=2"], timeout=60)
    assert res["x@r.test"][0] == "deferred"
    assert "timed out" in res["x@r.test"][1]


@pytest.mark.parametrize("where", ["greeting", "ehlo", "mail", "rcpt", "data", "dot"])
def test_dropped_connection(script, msgfile, where):
    s = script(**{where: DROP})
    res, _, _ = send("s@here.test", msgfile, "x@r.test", opts=relay(s.port))
    assert res["x@r.test"][0] == "deferred"
    assert res["x@r.test"][1].startswith("4.")


HOSTILE = [
    # NUL, CR, ESC and 8-bit bytes inside the text of a multi-line refusal
    ("rcpt", b"550-5.1.1 bad\x00user\rR<evil@x>\r\n550 5.1.1 \x1b[31mred\xff\r\n", "bounced"),
    # a "line" that never ends
    ("rcpt", b"250 " + b"A" * 5000 + b"\r\n", "deferred"),
    # a continuation that never comes
    ("rcpt", b"250-first line\r\n", "deferred"),
    # a bad code
    ("mail", b"2x0 ok\r\n", "deferred"),
    # the code changes inside the reply
    ("ehlo", b"250-remote.test\r\n550 PIPELINING\r\n", "deferred"),
    # an injected bare LF inside what looks like one line
    ("rcpt", b"550 5.1.1 no\nR1:evil@x\r\n", "bounced"),
]


@pytest.mark.parametrize("step,reply,outcome", HOSTILE)
def test_hostile_replies(script, msgfile, step, reply, outcome):
    s = script(**{step: reply})
    res, err, out = send("s@here.test", msgfile, "x@r.test", opts=relay(s.port) + ["timeout=3"])
    st = res["x@r.test"]
    assert st[0] == outcome, st
    # nothing unescaped leaves the client: one clean line per recipient
    assert len(out.splitlines()) == 1
    assert all(clean(f) for f in st)
    for line in err.splitlines():
        assert clean(line), repr(line)
    assert len(st[1]) < 600


def test_verbose_transcript(script, msgfile):
    s = script()
    res, err, _ = send("s@here.test", msgfile, "x@r.test", opts=relay(s.port), flags=["-v"])
    assert res["x@r.test"][0] == "sent"
    assert "127.0.0.1 OPEN" in err
    assert "127.0.0.1 << MAIL FROM:<s@here.test>" in err
    assert "127.0.0.1 >> 250 2.1.5 ok" in err
    assert "127.0.0.1 << QUIT" in err
    assert "127.0.0.1 CLOSE" in err


def test_route_failure_is_per_recipient(msgfile):
    z = ZoneServer({"null.test": [("MX", 0, ".")]}).start()
    try:
        res, err, _ = send("s@here.test", msgfile, "x@null.test",
                           opts=[f"resolver={z.resolver}", "dns-tries=1"])
        assert res["x@null.test"][:2] == ("bounced", "5.1.10 domain null.test accepts no mail (null MX)")
        assert "relay=none" in err and "dsn=5.1.10" in err and "status=bounced" in err
        res, _, _ = send("s@here.test", msgfile, "x@nowhere.test",
                         opts=[f"resolver={z.resolver}", "dns-tries=1"])
        assert res["x@nowhere.test"][0] == "bounced"
        assert res["x@nowhere.test"][1].startswith("5.1.2 ")
    finally:
        z.stop()


def _free_port_on(hosts):
    for _ in range(50):
        s = socket.socket()
        s.bind((hosts[0], 0))
        port = s.getsockname()[1]
        s.close()
        ok = True
        for h in hosts:
            t = socket.socket()
            try:
                t.bind((h, port))
            except OSError:
                ok = False
            t.close()
        if ok:
            return port
    raise RuntimeError("no port")


def test_mx_order_and_backup(script, msgfile):
    """relay-host=NAME:PORT follows NAME's MX records: the primary (127.0.0.2) is
    down, the backup (127.0.0.3) takes the mail; a more preferred MX that greets
    554 is passed over too."""
    port = _free_port_on(["127.0.0.2", "127.0.0.3", "127.0.0.4"])
    z = ZoneServer({
        "multi.test": [("MX", 20, "backup.multi.test"), ("MX", 10, "primary.multi.test"),
                       ("MX", 15, "grumpy.multi.test")],
        "primary.multi.test": [("A", "127.0.0.2")],
        "grumpy.multi.test": [("A", "127.0.0.4")],
        "backup.multi.test": [("A", "127.0.0.3")],
    }).start()
    grumpy = script(host="127.0.0.4", port=port, greeting=b"554 5.3.2 go away\r\n")
    backup = script(host="127.0.0.3", port=port)
    try:
        res, err, _ = send("s@here.test", msgfile, "x@multi.test", flags=["-v"],
                           opts=[f"resolver={z.resolver}", f"relay-host=multi.test:{port}"])
    finally:
        z.stop()
    assert res["x@multi.test"][0] == "sent"
    assert res["x@multi.test"][2] == "backup.multi.test"
    assert res["x@multi.test"][3] == f"backup.multi.test[127.0.0.3]:{port}"
    assert len(backup.messages) == 1
    assert grumpy.connections == 1 and grumpy.messages == []
    # tried in preference order
    assert err.index("127.0.0.2 OPEN") < err.index("127.0.0.4 OPEN") < err.index("127.0.0.3 OPEN")


def test_aaaa_only_host(msgfile):
    try:
        s6 = ScriptServer(host="::1").start()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    z = ZoneServer({"v6.test": [("MX", 10, "mx.v6.test")],
                    "mx.v6.test": [("AAAA", "::1")]}).start()
    try:
        res, _, _ = send("s@here.test", msgfile, "x@v6.test",
                         opts=[f"resolver={z.resolver}", f"relay-host=v6.test:{s6.port}"])
    finally:
        z.stop()
        s6.stop()
    assert res["x@v6.test"][0] == "sent"
    assert res["x@v6.test"][3] == f"mx.v6.test[::1]:{s6.port}"
    assert len(s6.messages) == 1


def test_all_hosts_down_defers(msgfile):
    port = _free_port_on(["127.0.0.1"])
    res, _, _ = send("s@here.test", msgfile, "x@r.test", opts=relay(port))
    assert res["x@r.test"][0] == "deferred"
    assert res["x@r.test"][1].startswith("4.4.1 ")
    assert "Connection refused" in res["x@r.test"][1]


def test_no_smuggling_on_the_wire(script, tmp_path):
    """Bare CR, bare LF and lone dots in the queued text: on the wire every line
    ends in CRLF and is dot-stuffed, so the only end of data is the real one."""
    text = (b"Subject: smuggle\n\n.\nfoo\r.\r\nMAIL FROM:<evil@x>\n"
            b"bar\rbaz\n.\r\n..x\nend")
    f = tmp_path / "df"
    f.write_bytes(text)
    s = script()
    res, _, _ = send("s@here.test", f, "x@r.test", opts=relay(s.port))
    assert res["x@r.test"][0] == "sent"
    [body] = s.messages
    assert body.endswith(b"end\r\n")           # everything arrived in one message
    assert b"MAIL FROM:<evil@x>\r\n" in body   # as text, not as a command
    assert not any(c.startswith("MAIL FROM:<evil") for c in s.commands)
    lines = body.split(b"\r\n")[:-1]
    for line in lines:
        assert b"\r" not in line and b"\n" not in line
        assert line != b"."                      # every lone dot was stuffed
    assert lines[:4] == [b"Subject: smuggle", b"", b"..", b"foo"]


def test_connection_reused_between_messages(script, msgfile):
    s = script()
    res, err, _ = send("s@here.test", msgfile, "x@r.test", opts=relay(s.port),
                       flags=["-v", "-r", "3"])
    assert res["x@r.test"][0] == "sent"
    assert s.connections == 1
    assert len(s.messages) == 3
    assert s.commands.count("RSET") == 2
    assert s.commands.count("QUIT") == 1
    assert err.count("REUSE") == 2


def test_connection_not_reused_when_rset_fails(script, msgfile):
    s = script(rset=b"421 4.3.2 closing\r\n")
    res, _, _ = send("s@here.test", msgfile, "x@r.test", opts=relay(s.port), flags=["-r", "2"])
    assert res["x@r.test"][0] == "sent"
    assert s.connections == 2
    assert len(s.messages) == 2


def test_dsn_parameters_passed_on(script, msgfile):
    s = script(ehlo=b"250-remote.test\r\n250 DSN\r\n")
    res, _, _ = send("s@here.test", msgfile, "x@r.test", opts=relay(s.port),
                     flags=["-N", "SUCCESS,DELAY", "-O", "-H"])
    assert res["x@r.test"][0] == "sent"
    assert "MAIL FROM:<s@here.test> RET=HDRS" in s.commands
    assert "RCPT TO:<x@r.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;x@r.test" in s.commands
    # a peer without DSN gets none of them
    s2 = script(ehlo=b"250 remote.test\r\n")
    send("s@here.test", msgfile, "x@r.test", opts=relay(s2.port),
         flags=["-N", "NEVER", "-O", "-H"])
    assert "MAIL FROM:<s@here.test>" in s2.commands
    assert "RCPT TO:<x@r.test>" in s2.commands


@pytest.mark.parametrize("where,backup_gets_it", [("data", True), ("dot", False)])
def test_lost_connection_next_mx_only_before_the_text(script, msgfile, where, backup_gets_it):
    """A primary that hangs up before the message text went out: the backup MX
    gets it now.  One that hangs up after the text: it may have the message,
    so nobody else gets it in this attempt (deferred; RFC 5321 6.1)."""
    port = _free_port_on(["127.0.0.5", "127.0.0.6"])
    z = ZoneServer({"two.test": [("MX", 10, "p.two.test"), ("MX", 20, "b.two.test")],
                    "p.two.test": [("A", "127.0.0.5")], "b.two.test": [("A", "127.0.0.6")]}).start()
    prim = script(host="127.0.0.5", port=port, **{where: DROP})
    back = script(host="127.0.0.6", port=port)
    try:
        res, _, _ = send("s@here.test", msgfile, "x@two.test",
                         opts=[f"resolver={z.resolver}", f"relay-host=two.test:{port}"])
    finally:
        z.stop()
    assert prim.connections == 1
    if backup_gets_it:
        assert res["x@two.test"][0] == "sent"
        assert len(back.messages) == 1
    else:
        assert res["x@two.test"][0] == "deferred"
        assert back.connections == 0
