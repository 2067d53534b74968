"""Envelope addresses against RFC 5321 4.1.2 (Mailbox, Local-part, Dot-string,
Quoted-string, Domain, address-literal) and 4.5.3.1 (lengths), through the
real server: what is valid is taken and echoed in its canonical form (the
same local part with the least quoting, RFC 5321 4.1.2); what is not is
refused with 553 and a reason - never "repaired" into another address."""
import os

import pytest

from remote_util import send
from smtpclient import Raw
from smtpscript import ScriptServer

OK, BAD = "ok", "bad"

# (path as sent, expected: canonical address or BAD, reason fragment)
TABLE = [
    # Dot-string
    ("<user@d.example>", "user@d.example"),
    ("<First.Last@D.Example>", "First.Last@d.example"),
    ("<a.b.c@d.example>", "a.b.c@d.example"),
    ("<!#$%&'*+-/=?^_`{|}~@d.example>", "!#$%&'*+-/=?^_`{|}~@d.example"),
    ("<.test@d.example>", BAD, "dot"),
    ("<test.@d.example>", BAD, "dot"),
    ("<test..x@d.example>", BAD, "dot"),
    # Quoted-string: kept, with the least quoting
    ('<"john smith"@d.example>', '"john smith"@d.example'),
    ('<"john\\ smith"@d.example>', '"john smith"@d.example'),
    ('<"joe"@d.example>', "joe@d.example"),
    ('<".test"@d.example>', '".test"@d.example'),
    ('<"test..x"@d.example>', '"test..x"@d.example'),
    ('<"a\\"b"@d.example>', '"a\\"b"@d.example'),
    ('<"a\\\\b"@d.example>', '"a\\\\b"@d.example'),
    ('<"a@b"@d.example>', '"a@b"@d.example'),
    ('<" "@d.example>', '" "@d.example'),
    ('<""@d.example>', BAD, "empty"),
    ('<"unterminated@d.example>', BAD, "quote"),
    # mixtures of quoted and unquoted text (RFC 5322 obs-local-part)
    ('<"test"test@d.example>', BAD, "mixes quoted"),
    ('<test"text"@d.example>', BAD, "mixes quoted"),
    ('<"a"."b"@d.example>', BAD, "mixes quoted"),
    # comments are not part of the envelope
    ("<(comment)user@d.example>", BAD, "comment"),
    ("<user@d.example(comment)>", BAD, "comment"),
    # Domain
    ("<user@d.example.>", BAD, "end with a dot"),
    ("<user@-d.example>", BAD, "domain"),
    ("<user@d..example>", BAD, "domain"),
    ("<user@d_x.example>", BAD, "domain"),
    ("<user@>", BAD, "domain"),
    # address literals
    ("<user@[203.0.113.1]>", "user@[203.0.113.1]"),
    ("<user@[IPv6:2001:DB8::1]>", "user@[IPv6:2001:db8::1]"),
    ("<user@[300.1.1.1]>", BAD, "literal"),
    ("<user@[2001:db8::1]>", BAD, "literal"),
    ("<user@[IPv6:203.0.113.1]>", BAD, "literal"),
    ("<user@[tag:x]>", BAD, "literal"),
    ("<user@[203.0.113.1>", BAD, "[ ]"),
    # source routes: accepted, ignored (RFC 5321 4.1.2, Appendix C)
    ("<@a.example,@b.example:user@d.example>", "user@d.example"),
    ("<@a.example.:user@d.example>", BAD, "route"),
    # structure
    ("<user@d.example", BAD, "missing >"),
    ("<a@b@d.example>", BAD, "@"),
    ("<user name@d.example>", BAD, "quoted"),
    # lengths: 64 local, 254 address
    ("<%s@d.example>" % ("l" * 64), "%s@d.example" % ("l" * 64)),
    ("<%s@d.example>" % ("l" * 65), BAD, "too long"),
    ("<%s@%s.%s.%s>" % ("l" * 64, "d" * 63, "d" * 63, "d" * 61),
     "%s@%s.%s.%s" % ("l" * 64, "d" * 63, "d" * 63, "d" * 61)),
    ("<%s@x.%s.%s.%s>" % ("l" * 64, "d" * 63, "d" * 63, "d" * 61), BAD, "too long"),
    # no SMTPUTF8 parameter: 8-bit addresses are refused (5.6.7)
    ("<j\u00f6rg@d.example>", BAD, "SMTPUTF8"),
]


@pytest.fixture
def daemon(sandbox):
    sandbox.write_config(load=0, max_errors=1000, verify_from=0)
    sandbox.start_daemon()
    return sandbox


def check_table(c, verb, code_ok, esc_bad):
    wrong = []
    for case in TABLE:
        path, want = case[0], case[1]
        code, lines = c.cmd("%s:%s" % (verb, path))
        text = b" ".join(lines).decode("utf-8", "replace")
        if want is BAD:
            if code != 553 or not (text.startswith(esc_bad) or text.startswith("5.6.7")) \
                    or case[2].lower() not in text.lower():
                wrong.append((path, code, text))
        elif code != code_ok or ("<%s>" % want) not in text:
            wrong.append((path, code, text))
        if verb.startswith("MAIL") and code == 250:
            c.cmd("RSET")
    return wrong


def test_rcpt_table(daemon):
    c = Raw(daemon.port)
    c.reply()
    assert c.cmd("EHLO client.example")[0] == 250
    assert c.cmd("MAIL FROM:<a@x.example>")[0] == 250
    wrong = check_table(c, "RCPT TO", 250, "5.1.3")
    c.close()
    assert not wrong, "\n".join(map(repr, wrong))


def test_mail_table(daemon):
    c = Raw(daemon.port)
    c.reply()
    assert c.cmd("EHLO client.example")[0] == 250
    wrong = check_table(c, "MAIL FROM", 250, "5.1.7")
    c.close()
    assert not wrong, "\n".join(map(repr, wrong))


def test_null_and_postmaster(daemon):
    c = Raw(daemon.port)
    c.reply()
    c.cmd("EHLO client.example")
    assert c.cmd("MAIL FROM:<>")[0] == 250
    code, lines = c.cmd("RCPT TO:<>")
    assert code == 553 and lines[0].startswith(b"5.1.3"), lines
    # RFC 5321 4.5.1: <Postmaster> without a domain, in any case
    for pm in ("<postmaster>", "<POSTMASTER>", "<PostMaster@%s>" % daemon.hostname):
        assert c.cmd("RCPT TO:" + pm)[0] == 250, pm
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: to postmaster\r\n\r\nhi\r\n.\r\n")
    assert c.reply()[0] == 250
    c.close()
    msgs = daemon.wait_for_mail(daemon.acc["u1"])
    assert msgs and msgs[0]["Subject"] == "to postmaster"


def test_quoted_local_part_is_the_local_user(daemon):
    """"user"@ourdomain is user@ourdomain: the quotes say nothing more; a
    quoted local part that is not a user name stays what it is (no user)."""
    u = daemon.acc["u2"]
    c = Raw(daemon.port)
    c.reply()
    c.cmd("EHLO client.example")
    assert c.cmd("MAIL FROM:<a@x.example>")[0] == 250
    code, lines = c.cmd('RCPT TO:<"%s"@%s>' % (u, daemon.hostname))
    assert code == 250 and ("<%s@%s>" % (u, daemon.hostname)).encode() in lines[0], lines
    code, lines = c.cmd('RCPT TO:<"%s "@%s>' % (u, daemon.hostname))
    assert code == 550 and lines[0].startswith(b"5.1.1"), lines
    code, lines = c.cmd('RCPT TO:<"%s"x@%s>' % (u, daemon.hostname))
    assert code == 553 and lines[0].startswith(b"5.1.3"), lines
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: quoted\r\n\r\nhi\r\n.\r\n")
    assert c.reply()[0] == 250
    c.close()
    msgs = daemon.wait_for_mail(u)
    assert msgs and msgs[0]["Subject"] == "quoted"


def test_quoted_local_part_relayed_as_received(sandbox):
    """The SMTP client sends a quoted local part with its quotes: the next hop
    sees the same mailbox ("john smith", not johnsmith)."""
    srv = ScriptServer().start()
    try:
        msg = os.path.join(sandbox.dir, "df")
        with open(msg, "wb") as f:
            f.write(b"Subject: q\n\nhi\n")
        rcpt = '"john smith"@remote.test'
        res, err, _ = send("s@here.test", msg, rcpt,
                           opts=[f"relay-host=[127.0.0.1]:{srv.port}", "hostname=client.test"])
        assert res[rcpt][0] == "sent", (res, err)
        assert 'RCPT TO:<"john smith"@remote.test>' in srv.commands, srv.commands
    finally:
        srv.stop()


def test_sendmail_t_uses_the_same_rules(sandbox):
    """-t reads To:/Cc:/Bcc: by the same rules; an entry it cannot read is
    refused with its reason (EX_DATAERR), never dropped while the rest goes."""
    u1, u2 = sandbox.acc["u1"], sandbox.acc["u2"]
    good = (f'To: "Jane" <"{u1}"@{sandbox.hostname}> (work), team: {u2};\n'
            "Subject: t ok\n\nhi\n")
    r = sandbox.sendmail("-t", "-i", message=good)
    assert r.returncode == 0, r.stderr
    assert sandbox.wait_for_mail(u1)[0]["Subject"] == "t ok"
    for bad, why in ((f"{u2}..x@{sandbox.hostname}", "dot"),
                     (f'"{u2}"x@{sandbox.hostname}', "mixes quoted"),
                     (f"{u2}@{sandbox.hostname}.", "end with a dot")):
        text = f"To: {u1}@{sandbox.hostname}, {bad}\nSubject: t bad\n\nhi\n"
        r = sandbox.sendmail("-t", "-i", message=text)
        err = r.stderr.decode(errors="replace")
        assert r.returncode == 65, (bad, r.returncode, err)
        assert bad in err and why in err, err
    assert not any(b"t bad" in d for d, _ in sandbox.queued().values())
    assert all(m["Subject"] != "t bad" for m in sandbox.mbox(u1))
