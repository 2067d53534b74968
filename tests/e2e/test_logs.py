"""The event log (postoffice-log(5)) and its summary (postoffice -bS).

The daemon runs in the foreground and logs on stderr, which the test reads
as it comes (no system syslog involved).  Real clients (python's smtplib,
swaks) send mail that is delivered locally, relayed to an aiosmtpd server
(relay-host=) that accepts, refuses (550) or defers (451) by recipient, and
refused in the SMTP session for each reason; -bs -R plays remote clients
(relay denied, tcp wrappers).  The captured lines are checked one by one, then
written out as a syslog daemon would (RFC 3164 / Debian rsyslog, RFC 5424,
journalctl short-iso, and bare) with other programs' lines mixed in, and
postoffice -bS must give the same figures from each."""
import os
import re
import shutil
import smtplib
import subprocess
import threading
import time

import pytest
from aiosmtpd.controller import Controller

from conftest import IS_ROOT, free_port
from smtpclient import Raw

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="relay-host= is a root-only option; "
                                "run the tests as root")

DENIED = "203.0.113.9"      # hosts.deny names it
OUTSIDE = "203.0.113.8"     # a remote client that may not relay


class Remote:
    """The relay host: 550 for bounce@, 451 for later@, 250 otherwise."""

    def __init__(self):
        self.got = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bounce@"):
            return "550 5.1.1 no such user here"
        if address.startswith("later@"):
            return "451 4.3.2 try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 ok"

    async def handle_DATA(self, server, session, envelope):
        self.got.append(envelope)
        return "250 2.0.0 stored"


class Capture:
    """The daemon's stderr, line by line, each with the time it came."""

    def __init__(self, stream):
        self.lines = []
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.t.start()

    def _read(self, stream):
        for raw in stream:
            with self.lock:
                self.lines.append((time.time(), raw.decode("ascii", "replace").rstrip("\n")))

    def add(self, text):
        now = time.time()
        with self.lock:
            self.lines.extend((now, l) for l in text.splitlines() if l)

    def text(self):
        with self.lock:
            return [l for _, l in self.lines]

    def wait_for(self, pred, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred(self.text()):
                return True
            time.sleep(0.1)
        return False


@pytest.fixture
def remote():
    h = Remote()
    h.port = free_port()
    c = Controller(h, hostname="127.0.0.1", port=h.port)
    c.start()
    yield h
    c.stop()


@pytest.fixture
def sb(sandbox, remote):
    allow = os.path.join(sandbox.dir, "hosts.allow")
    deny = os.path.join(sandbox.dir, "hosts.deny")
    open(allow, "w").write("")
    open(deny, "w").write("smtp: %s\n" % DENIED)
    sandbox.write_config(relay_host="[127.0.0.1]:%d" % remote.port, max_recipients=3,
                         size=100000, verify_from=0, hosts_allow=allow, hosts_deny=deny,
                         early_talker=False)
    sandbox.set_aliases("postmaster: %s\nMAILER-DAEMON: postmaster\n" % sandbox.acc["u1"])
    return sandbox


def count(lines, *parts):
    return sum(all(p in l for p in parts) for l in lines)


def one(lines, *parts):
    found = [l for l in lines if all(p in l for p in parts)]
    assert len(found) == 1, (parts, "\n".join(lines))
    return found[0]


def bs(sb, peer, script):
    """A -bs session as a remote client; its log lines (-v: on stderr)."""
    r = sb.run("postoffice", "-v", "-bs", "-R", peer,
               input=("\r\n".join(script + ["QUIT"]) + "\r\n"))
    return r.stdout.decode(), r.stderr.decode()


def traffic(sb, remote, cap):
    """Mail accepted, refused, relayed, bounced and deferred; returns the
    number of SMTP connections made to the daemon."""
    u1, u2 = ("%s@%s" % (sb.acc[k], sb.hostname) for k in ("u1", "u2"))
    conns = 1  # start_daemon's probe
    # accepted: smtplib, two local recipients
    with smtplib.SMTP("127.0.0.1", sb.port) as s:
        s.sendmail("alice@client.example", [u1, u2],
                   "Message-ID: <one@client.example>\nSubject: one\n\nfirst\n")
    conns += 1
    # accepted: swaks, one local recipient
    if shutil.which("swaks"):
        r = subprocess.run(["swaks", "-s", "127.0.0.1", "-p", str(sb.port), "-f",
                            "bob@Client.Example", "-t", u1, "--header",
                            "Message-ID: <two@client.example>", "--body", "second"],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
    else:  # the same with smtplib
        with smtplib.SMTP("127.0.0.1", sb.port) as s:
            s.sendmail("bob@Client.Example", [u1], "Message-ID: <two@client.example>\n\nsecond\n")
    conns += 1
    # relayed: one accepted, one refused (bounced), one deferred by the relay host
    with smtplib.SMTP("127.0.0.1", sb.port) as s:
        s.sendmail("carol@sender.example",
                   ["ok@remote.example", "bounce@remote.example", "later@remote.example"],
                   "Message-ID: <three@sender.example>\nSubject: three\n\nthird\n")
    conns += 1
    # refused in the session: unknown user, too many recipients, size, syntax, AUTH
    c = Raw(sb.port)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO refused.example")[0] == 250
    assert c.cmd("MAIL FROM:<dave@client.example> SIZE=200000")[0] == 552
    assert c.cmd("MAIL FROM <dave@client.example>")[0] == 501
    assert c.cmd("AUTH PLAIN AGEAYg==")[0] in (502, 538)  # not offered here
    assert c.cmd("MAIL FROM:<dave@client.example>")[0] == 250
    assert c.cmd("RCPT TO:<nosuchuser@%s>" % sb.hostname)[0] == 550
    for r in (u1, u2, "postmaster@" + sb.hostname):
        assert c.cmd("RCPT TO:<%s>" % r)[0] == 250
    assert c.cmd("RCPT TO:<MAILER-DAEMON@%s>" % sb.hostname)[0] == 452
    assert c.cmd("RSET")[0] == 250
    assert c.cmd("QUIT")[0] == 221
    c.close()
    conns += 1
    # remote clients: relaying denied, and one tcp wrappers refuse
    out, err = bs(sb, OUTSIDE, ["EHLO outside.example", "MAIL FROM:<eve@outside.example>",
                                "RCPT TO:<x@elsewhere.example>"])
    assert "\r\n550 " in out or "\r\n554 " in out, out
    cap.add(err)
    out, err = bs(sb, DENIED, [])
    assert out.startswith("554 "), out
    cap.add(err)
    conns += 2
    return conns


def check_lines(sb, lines):
    """Each event has its one line, with the fields postoffice-log(5) promises."""
    u1 = "%s@%s" % (sb.acc["u1"], sb.hostname)
    q1 = one(lines, "queued from=<alice@client.example>, size=", "nrcpt=2",
             "msgid=<one@client.example>", "client=localhost[127.0.0.1]", "proto=ESMTP")
    assert re.search(r"^smtpd: [0-9A-Za-z]+: queued ", q1), q1
    one(lines, "queued from=<bob@", "nrcpt=1", "msgid=<")  # swaks makes its own id
    one(lines, "queued from=<carol@sender.example>", "nrcpt=3")
    # deliveries: dsn=, delay= (whole seconds), relay= and status= on every line
    for l in lines:
        if " delivery " in l:
            assert re.search(r": delivery to=<[^>]+>, (orig_to=<[^>]+>, )?relay=\S+, "
                             r"delay=\d+, dsn=[245]\.\d+\.\d+, "
                             r"status=(sent|deferred|bounced|expired), reason=", l), l
    assert count(lines, "delivery to=<%s>" % u1, "relay=local", "dsn=2.0.0", "status=sent") == 2
    one(lines, "delivery to=<ok@remote.example>", "relay=[127.0.0.1]:", "status=sent")
    one(lines, "delivery to=<bounce@remote.example>", "dsn=5.1.1", "status=bounced")
    assert count(lines, "delivery to=<later@remote.example>", "dsn=4.3.2", "status=deferred") == 2
    b = [l for l in lines if "bounce kind=failure, bounce_qid=" in l][0]
    assert "to=<carol@sender.example>" in b, b
    bqid = re.search(r"bounce_qid=(\w+)", b).group(1)
    one(lines, "%s: queued from=<>" % bqid, "proto=bounce")
    one(lines, "%s: delivery to=<carol@sender.example>" % bqid, "status=sent")
    assert count(lines, ": removed") >= 4
    # refusals: one uniform line each, with client, sender, recipient, code, reason
    one(lines, "reject cmd=MAIL, client=localhost[127.0.0.1], helo=refused.example",
        "from=<dave@client.example>", "code=552, dsn=5.3.4, reason=")
    one(lines, "reject cmd=MAIL", "code=501, dsn=5.5.2")
    one(lines, "reject cmd=AUTH", "code=5")
    one(lines, "reject cmd=RCPT", "from=<dave@client.example>",
        "to=<nosuchuser@%s>" % sb.hostname, "code=550")
    one(lines, "reject cmd=RCPT", "code=452, dsn=4.5.3", "reason=\"too many recipients")
    one(lines, "reject cmd=RCPT, client=unknown[%s]" % OUTSIDE, "from=<eve@outside.example>",
        "to=<x@elsewhere.example>", "code=55")
    one(lines, "reject cmd=CONNECT, client=unknown[%s]" % DENIED, "code=554")
    one(lines, "disconnect client=localhost[127.0.0.1], helo=refused.example", "ehlo=1",
        "mail=1/3", "rcpt=3/5", "rset=1", "quit=1", "auth=0/1", "commands=7/12")
    # every event line is in the one format
    for l in lines:
        m = re.match(r"^(smtpd|runq|postoffice): (?:\w+: )?(connect|disconnect|reject|queued|"
                     r"delivery|bounce|removed) ", l)
        if m:
            assert re.match(r"^\S+: (\w+: )?\w+( [a-z_0-9]+=(<([^\\>]|\\.)*>|\"([^\\\"]|\\.)*\"|"
                            r"[^ ,\"<]+)(, [a-z_0-9]+=(<([^\\>]|\\.)*>|\"([^\\\"]|\\.)*\"|"
                            r"[^ ,\"<]+))*)?$", l), l


def fmt_lines(cap, form):
    """The captured lines as a syslog daemon would have written them, with
    other programs' lines among them."""
    out = ["kernel: [ 12.3] eth0: link up"]
    for t, line in cap.lines:
        ident, _, msg = line.partition(": ")
        if form == "bare":
            out.append(line)
        elif form == "rfc3164":
            out.append("%s testhost %s[4242]: %s" % (time.strftime("%b %e %H:%M:%S",
                                                                    time.localtime(t)),
                                                      ident, msg))
        elif form == "rfc5424":
            out.append("<22>1 %s.%03dZ testhost %s 4242 - - %s" % (
                time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)), int(t * 1000) % 1000,
                ident, msg))
        elif form == "journal":
            out.append("%s testhost %s[4242]: %s" % (
                time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t)), ident, msg))
        out.append("Dec  7 00:00:00 testhost postfix/qmgr[1]: ABCDEF: removed")
    return out


def summary(sb, path=None, text=None):
    args = ["-bS"] + ([path] if path else [])
    r = sb.run("postoffice", *args, input=text)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def totals(out):
    sect = out.split("Grand totals\n", 1)[1].split("\n\n", 1)[0]
    return {m.group(2): int(m.group(1)) for m in
            re.finditer(r"^ +(\d+)  (.+)$", sect, re.M)}


def hours_of(out):
    """{hour: [received, delivered, deferred, bounced, expired, rejected]}"""
    if "Per-hour traffic (all days)\n  none" in out:
        return {}
    sect = out.split("Per-hour traffic (all days)\n", 1)[1].split("\n\n", 1)[0]
    rows = {}
    for m in re.finditer(r"^  (\d\d):00-\d\d:00 +([\d ]+)$", sect, re.M):
        rows[int(m.group(1))] = [int(x) for x in m.group(2).split()]
    return rows


def expected_hours(cap, utc):
    """The per-hour figures computed here from the captured lines."""
    rows = {}
    for t, l in cap.lines:
        h = (time.gmtime(t) if utc else time.localtime(t)).tm_hour
        col = None
        if re.search(r": \w+: queued ", l) and "proto=bounce" not in l:
            col = 0
        elif " delivery " in l:
            for i, w in ((1, "sent"), (2, "deferred"), (3, "bounced"), (4, "expired")):
                if "status=%s," % w in l:
                    col = i
        elif re.search(r"^\w+: (\w+: )?reject ", l):
            col = 5
        if col is not None:
            rows.setdefault(h, [0] * 6)[col] += 1
    return rows


def test_log_lines_and_summary(sb, remote):
    p = sb.start_daemon()
    cap = Capture(p.stderr)
    conns = traffic(sb, remote, cap)
    assert cap.wait_for(lambda ls: count(ls, "status=deferred") == 1 and
                        count(ls, "to=<carol@sender.example>", "status=sent") == 1 and
                        count(ls, "status=sent") == 5), "\n".join(cap.text())
    # expiry: the deferred recipient is tried once more, then given up
    time.sleep(2.2)
    sb.write_config(qreturn="2s", qwarn=0)
    r = sb.run("runq", "-v")
    assert r.returncode == 0, r.stderr
    cap.add(r.stderr.decode())
    p.terminate()
    p.wait(timeout=20)
    cap.t.join(timeout=10)
    lines = cap.text()
    check_lines(sb, lines)
    one(lines, "delivery to=<later@remote.example>", "dsn=4.4.7", "status=expired")
    assert count(lines, "bounce kind=failure", "to=<carol@sender.example>") == 2
    assert len(remote.got) == 3  # ok@, and two bounces to carol

    sizes = {m.group(1): int(m.group(2)) for m in
             (re.search(r": (\w+): queued .*size=(\d+)", l) for l in lines) if m}
    received_bytes = sum(int(re.search(r"size=(\d+)", l).group(1)) for l in lines
                         if re.search(r": \w+: queued ", l) and "proto=bounce" not in l)
    delivered_bytes = sum(sizes[re.search(r": (\w+): delivery", l).group(1)]
                          for l in lines if " delivery " in l and "status=sent" in l)
    want = {
        "received": 3, "delivered": 6, "deferred (attempts)": 2, "deferred (messages)": 1,
        "bounced": 1, "expired": 1, "rejected (5xx)": 6, "rejected temporarily (4xx)": 1,
        "bounce notices sent": 2, "delay notices sent": 0, "connections": conns,
        "bytes received": received_bytes, "bytes delivered": delivered_bytes,
        "senders": 3, "sending domains": 2, "recipients": 4, "receiving domains": 3,
    }
    outs = {}
    for form in ("bare", "rfc3164", "rfc5424", "journal"):
        path = os.path.join(sb.dir, "mail.log." + form)
        with open(path, "w") as f:
            f.write("\n".join(fmt_lines(cap, form)) + "\n")
        outs[form] = out = summary(sb, path)
        got = totals(out)
        for k, v in want.items():
            assert got[k] == v, (form, k, got[k], v, out)
        if form == "bare":
            assert hours_of(out) == {}
        else:
            want_h = expected_hours(cap, utc=form == "rfc5424")
            got_h = {h: row for h, row in hours_of(out).items() if any(row)}
            assert got_h == want_h, (form, got_h, want_h)
    out = outs["rfc3164"]
    # stdin works as a file does
    assert summary(sb, text=open(os.path.join(sb.dir, "mail.log.rfc3164")).read()) == out
    # top lists: senders (domains lower-cased), recipients, domains, reasons
    u1 = "%s@%s" % (sb.acc["u1"], sb.hostname)
    assert re.search(r"^ +1 +\d+  bob@client\.example$", out, re.M), out
    assert re.search(r"^ +2 +\d+  client\.example$", out, re.M), out
    assert re.search(r"^ +2 +\d+  %s$" % re.escape(u1), out, re.M), out
    assert re.search(r"^ +2 +\d+  carol@sender\.example$", out, re.M), out
    assert re.search(r"^ +1  RCPT 550 5\.\d\.\d+ ", out, re.M), out
    assert re.search(r"^ +1  CONNECT 554 5\.7\.1 ", out, re.M), out
    assert re.search(r"^ +2  4\.3\.2 N try again later$", out, re.M), out  # 451 folded
    assert "maximum" in out and "median" in out


def test_summary_refuses_missing_file(sandbox):
    r = sandbox.run("postoffice", "-bS", os.path.join(sandbox.dir, "nonexistent.log"))
    assert r.returncode == 66 and b"cannot read" in r.stderr, r


def test_early_talker_refusal_logged(sandbox):
    """A policy refusal at the greeting has its reject line like the others."""
    sandbox.write_config(greet_pause=1)
    p = sandbox.start_daemon()
    c = Raw(sandbox.port)
    c.send("EHLO early.example\r\n")
    assert c.reply()[0] == 554
    c.close()
    time.sleep(0.5)
    p.terminate()
    p.wait(timeout=20)
    log = p.stderr.read().decode()
    assert re.search(r"^smtpd: reject cmd=CONNECT, client=localhost\[127\.0\.0\.1\], "
                     r"code=554, dsn=5\.5\.0, reason=\".*talked before the greeting\"$",
                     log, re.M), log


def test_admission_refusal_logged(sandbox):
    """The master's own refusal (clients=) has the same reject line."""
    sandbox.write_config(clients=1)
    p = sandbox.start_daemon()
    for _ in range(100):  # the probe's slot is freed once the master reaped it
        a = Raw(sandbox.port)
        if a.reply()[0] == 220:
            break
        a.close()
        time.sleep(0.05)
    b = Raw(sandbox.port)
    assert b.reply()[0] == 421
    a.close()
    b.close()
    time.sleep(0.3)
    p.terminate()
    p.wait(timeout=20)
    log = p.stderr.read().decode()
    assert re.search(r"^postoffice: reject cmd=CONNECT, client=unknown\[127\.0\.0\.1\], "
                     r"code=421, dsn=4\.3\.2, reason=\"too many connections; try again later\"$",
                     log, re.M), log


def test_sendmail_queued_and_pickup_lines(sandbox, accounts):
    """The command line's messages: queued (root: into the queue; a user: into
    the maildrop, then a pickup line with the queue id it gets)."""
    u1 = "%s@%s" % (accounts["u1"], sandbox.hostname)
    r = sandbox.sendmail("-v", "-i", u1, message="Message-ID: <cli@x.example>\nSubject: a\n\nb\n")
    assert r.returncode == 0, r.stderr
    err = r.stderr.decode()
    assert re.search(r"^sendmail: \w+: queued from=<root@%s>, size=\d+, nrcpt=1, "
                     r"msgid=<cli@x\.example>, client=local, user=root, uid=0, "
                     r"proto=sendmail$" % re.escape(sandbox.hostname), err, re.M), err
    user = accounts["u2"]
    if user == accounts["spool"]:
        pytest.skip("one account plays every part: no maildrop submission")
    r = sandbox.sendmail("-v", "-i", u1, message="Subject: c\n\nd\n", user=user)
    assert r.returncode == 0, r.stderr
    err = r.stderr.decode()
    m = re.search(r"^sendmail: (\w+): queued from=<%s@%s>, size=\d+, nrcpt=1, msgid=<[^>]+>, "
                  r"client=local, user=%s, uid=\d+, proto=sendmail, queue=maildrop$"
                  % (user, re.escape(sandbox.hostname), user), err, re.M)
    assert m, err
    r = sandbox.runq("-v")
    err = r.stderr.decode()
    assert re.search(r"^runq: \w+: pickup maildrop=%s, from=<%s[@>]" % (m.group(1), user), err,
                     re.M), err
