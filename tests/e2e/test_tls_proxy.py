"""The TLS proxy (tls_proxy.h): one process holds every TLS connection and
relays plaintext to the session processes.  What it must get right: a large
message crosses intact, many sessions share one proxy, a proxy that dies is
replaced, SIGHUP starts a new proxy while the old one finishes its
connections, a client that vanishes mid-handshake costs nobody else.
Clients we did not write: python smtplib/ssl, swaks; mail read back with
python's mailbox module."""
import hashlib
import os
import random
import signal
import smtplib
import socket
import ssl
import time

import pytest

from smtpclient import Raw
from test_tls_server import HOST, daemon_log, tls_config, user_addr
from procs import kids_named as kids
from test_tls_server import pki  # noqa: F401  (the fixture)


@pytest.fixture(autouse=True)
def _no_load_limit(sandbox):
    sandbox.write_config(load=0, clients=200, clients_per_host=0)


def wait_until(fn, timeout=20, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def client_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def tls_smtp(port):
    s = smtplib.SMTP("127.0.0.1", port, timeout=30)
    s.ehlo("client.example")
    s.starttls(context=client_ctx())
    s.ehlo("client.example")
    return s


def after_starttls(port, timeout=20):
    """A raw client whose STARTTLS was answered 220 (no handshake yet)."""
    c = Raw(port, timeout=timeout)
    c.reply()
    c.cmd("EHLO client.example")
    assert c.cmd("STARTTLS")[0] == 220
    return c


def test_large_message_crosses_the_proxy_intact(sandbox, pki):
    """3 MB of varied lines, dots at line starts included, through STARTTLS:
    the mailbox holds exactly what was sent."""
    tls_config(sandbox, pki)
    sandbox.start_daemon()
    rnd = random.Random(7)
    lines = []
    for i in range(40000):
        n = rnd.randrange(0, 150)
        line = "".join(rnd.choice("abcdefghij .,-=0123456789") for _ in range(n))
        lines.append(("." + line) if i % 97 == 0 else line)
    body = "\r\n".join(lines) + "\r\n"
    msg = ("From: a@client.example\r\nTo: %s\r\nSubject: big\r\n\r\n" % user_addr(sandbox)
           + body)
    s = tls_smtp(sandbox.port)
    s.sendmail("a@client.example", [user_addr(sandbox)], msg.encode())
    s.quit()
    msgs = sandbox.wait_for_mail(sandbox.acc["u1"], timeout=60)
    assert msgs, "not delivered"
    got = msgs[0].get_payload()
    want = body.replace("\r\n", "\n")
    assert hashlib.sha256(got.encode()).hexdigest() == \
        hashlib.sha256(want.encode()).hexdigest(), (len(got), len(want))


def test_many_sessions_share_one_proxy(sandbox, pki):
    """40 sessions under TLS at once: one proxy holds them all, each session
    works, and their processes are not root."""
    tls_config(sandbox, pki)
    p = sandbox.start_daemon()
    conns = [tls_smtp(sandbox.port) for _ in range(40)]
    assert len(kids(p.pid, "po-tls")) == 1
    for i, s in enumerate(conns):
        code, _ = s.noop()
        assert code == 250, i
    for s in conns[:5]:
        s.sendmail("a@client.example", [user_addr(sandbox)],
                   b"Subject: one of many\r\n\r\nhello\r\n")
    for s in conns:
        assert s.quit()[0] == 221
    assert len(sandbox.wait_for_mail(sandbox.acc["u1"], count=5)) == 5


def test_a_dead_proxy_is_replaced(sandbox, pki):
    """kill -9 of the proxy: its connections close, the master starts
    another, and STARTTLS works again (no stale session process keeps the
    dead one's socket)."""
    tls_config(sandbox, pki)
    p = sandbox.start_daemon()
    old = wait_until(lambda: kids(p.pid, "po-tls"), what="the proxy")[0]
    s = tls_smtp(sandbox.port)
    time.sleep(1.2)  # one that dies within a second of its start is not restarted
    os.kill(old, signal.SIGKILL)
    with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionError, ssl.SSLError)):
        s.noop()
        s.noop()
    new = wait_until(lambda: [k for k in kids(p.pid, "po-tls") if k != old],
                     what="a new proxy")
    assert new
    for _ in range(3):  # whichever session process serves it
        s = tls_smtp(sandbox.port)
        s.sendmail("a@client.example", [user_addr(sandbox)],
                   b"Subject: after the crash\r\n\r\nhello\r\n")
        s.quit()
    assert len(sandbox.wait_for_mail(sandbox.acc["u1"], count=3)) == 3
    log = daemon_log(sandbox, p)
    assert "the TLS proxy ended; starting another" in log, log


def test_sighup_lets_open_tls_sessions_finish(sandbox, pki):
    """A session under TLS when SIGHUP comes goes on with the old proxy and
    delivers; new clients get the new proxy; the old one leaves after its
    last connection."""
    tls_config(sandbox, pki)
    p = sandbox.start_daemon()
    old = wait_until(lambda: kids(p.pid, "po-tls"), what="the proxy")[0]
    s = tls_smtp(sandbox.port)
    os.kill(p.pid, signal.SIGHUP)
    wait_until(lambda: [k for k in kids(p.pid, "po-tls") if k != old], what="a new proxy")
    assert old in kids(p.pid, "po-tls"), "the old proxy left with a connection open"
    s.sendmail("a@client.example", [user_addr(sandbox)], b"Subject: across\r\n\r\nhi\r\n")
    s.quit()
    s = tls_smtp(sandbox.port)
    s.sendmail("a@client.example", [user_addr(sandbox)], b"Subject: new\r\n\r\nhi\r\n")
    s.quit()
    assert len(sandbox.wait_for_mail(sandbox.acc["u1"], count=2)) == 2
    wait_until(lambda: old not in kids(p.pid, "po-tls"), what="the old proxy to leave")


def test_a_vanishing_client_costs_nobody_else(sandbox, pki):
    """Clients that close mid-handshake, send garbage instead of a
    ClientHello, or half a ClientHello and then nothing: the proxy stays,
    and a TLS session running meanwhile is not disturbed."""
    tls_config(sandbox, pki, tls_handshake_timeout="3s")
    p = sandbox.start_daemon()
    proxy = wait_until(lambda: kids(p.pid, "po-tls"), what="the proxy")[0]
    busy = tls_smtp(sandbox.port)
    stalls = []
    for how in ("close", "garbage", "stall"):
        c = after_starttls(sandbox.port)
        if how == "close":
            c.close()
        elif how == "garbage":
            c.s.sendall(b"EHLO not tls at all\r\n" * 50)
            c.close()
        else:
            c.s.sendall(b"\x16\x03\x01\x02\x00\x01")  # a record header, no more
            stalls.append(c)
    assert busy.noop()[0] == 250
    busy.sendmail("a@client.example", [user_addr(sandbox)], b"Subject: busy\r\n\r\nhi\r\n")
    # the stalled handshake ends at its deadline: the connection is closed
    c = stalls[0]
    c.s.settimeout(15)
    t0 = time.time()
    assert c.s.recv(100) == b"", "a stalled handshake was not cut off"
    assert time.time() - t0 < 12
    assert busy.quit()[0] == 221
    assert kids(p.pid, "po-tls") == [proxy]
    assert sandbox.wait_for_mail(sandbox.acc["u1"])
    log = daemon_log(sandbox, p)
    assert "handshake timed out" in log, log


def test_no_tls_no_proxy(sandbox):
    """Without a certificate there is no proxy, and STARTTLS is not offered."""
    p = sandbox.start_daemon()
    time.sleep(0.3)
    assert kids(p.pid, "po-tls") == []
    s = smtplib.SMTP("127.0.0.1", sandbox.port, timeout=10)
    s.ehlo("client.example")
    assert not s.has_extn("starttls")
    s.quit()


def test_several_proxies_share_the_sessions(sandbox, pki):
    """tls-proxies=3: three proxies; sessions spread over them and all work;
    one of them killed is replaced while the others keep their sessions."""
    tls_config(sandbox, pki, tls_proxies=3, session_max_use=1)
    p = sandbox.start_daemon()
    proxies = wait_until(lambda: len(kids(p.pid, "po-tls")) == 3 and kids(p.pid, "po-tls"),
                         what="three proxies")
    conns = [tls_smtp(sandbox.port) for _ in range(12)]
    # which proxy holds each connection: the one with a TCP socket to its port
    def holders():
        out = set()
        for pid in proxies:
            fds = os.listdir("/proc/%d/fd" % pid)
            if len(fds) > 6:  # more than its own sockets and stdio
                out.add(pid)
        return out
    assert len(holders()) >= 2, "the sessions did not spread over the proxies"
    time.sleep(1.2)
    os.kill(proxies[0], signal.SIGKILL)
    wait_until(lambda: len(kids(p.pid, "po-tls")) == 3 and proxies[0] not in kids(p.pid, "po-tls"),
               what="a replacement")
    alive = 0
    for s in conns:
        try:
            if s.noop()[0] == 250:
                alive += 1
            s.quit()
        except (smtplib.SMTPException, OSError, ssl.SSLError):
            pass
    assert 0 < alive < 12, alive
    s = tls_smtp(sandbox.port)
    s.sendmail("a@client.example", [user_addr(sandbox)], b"Subject: after\r\n\r\nhi\r\n")
    s.quit()
    assert sandbox.wait_for_mail(sandbox.acc["u1"])


def test_client_half_close_after_quit_gets_the_221(sandbox, pki):
    """A client that sends QUIT and then shuts down its side of the TCP
    connection still reads the 221 (the proxy passes the end on to the
    session and sends its last reply)."""
    tls_config(sandbox, pki)
    sandbox.start_daemon()
    c = after_starttls(sandbox.port)
    sock = c.s
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_ctx().wrap_bio(inc, out, server_hostname=HOST)

    def pump_out():
        data = out.read()
        if data:
            sock.sendall(data)

    def pump_in():
        data = sock.recv(65536)
        if data:
            inc.write(data)
        else:
            inc.write_eof()
        return data

    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            pump_out()
            pump_in()
    pump_out()

    def read_reply():
        buf = b""
        while not buf.endswith(b"\r\n") or buf.split(b"\r\n")[-2][3:4] == b"-":
            try:
                buf += tls.read(4096)
            except ssl.SSLWantReadError:
                assert pump_in(), "the connection ended before the reply: %r" % buf
        return buf

    tls.write(b"EHLO client.example\r\n")
    pump_out()
    assert read_reply().startswith(b"250")
    tls.write(b"QUIT\r\n")
    pump_out()
    sock.shutdown(socket.SHUT_WR)
    assert read_reply().startswith(b"221"), "no 221 after a half-close"
    sock.close()


def test_a_stopped_proxy_does_not_hold_sessions_for_ever(sandbox, pki):
    """The proxy stopped (SIGSTOP): a STARTTLS gets its 220, then the session
    gives up after the handshake time (plus a few seconds) and closes the
    connection; once the proxy runs again, TLS works."""
    tls_config(sandbox, pki, tls_handshake_timeout="1s")
    p = sandbox.start_daemon()
    proxy = wait_until(lambda: kids(p.pid, "po-tls"), what="the proxy")[0]
    # The proxy must have reported ready first: stopped before that, it holds
    # the master at its start (TLS_PROXY_START_MS), not a session.
    s = tls_smtp(sandbox.port)
    s.quit()
    os.kill(proxy, signal.SIGSTOP)
    try:
        t0 = time.time()
        c = after_starttls(sandbox.port, timeout=30)
        c.s.sendall(b"\x16\x03\x01\x00\x05hello")  # the start of a ClientHello
        c.s.settimeout(30)
        try:
            data = c.s.recv(100)
        except ConnectionResetError:
            data = b""
        assert data == b"", data
        assert time.time() - t0 < 20, "the session waited %.1f s" % (time.time() - t0)
        c.close()
    finally:
        os.kill(proxy, signal.SIGCONT)
    s = tls_smtp(sandbox.port)
    assert s.noop()[0] == 250
    s.quit()
