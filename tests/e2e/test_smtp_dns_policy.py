"""Policies that need DNS: paranoid, verify-from, checkhelo, localmx, trusted=
host names, the PTR name in Received:.  A DNS server of our own (dnslib) on
loopback answers; resolver= points the daemon at it.  Remote clients are
played with -bs -R ADDR."""
import socket

import pytest
from dnslib import A, MX, PTR, QTYPE, RCODE, RR
from dnslib.server import BaseResolver, DNSServer

from smtpclient import bs

ZONE = {
    # name: [(qtype, rdata)]
    "7.2.0.192.in-addr.arpa.": [(QTYPE.PTR, PTR("good.client.example."))],
    "good.client.example.": [(QTYPE.A, A("192.0.2.7")),
                             (QTYPE.MX, MX("mx.local.example.", 10))],
    "mx.local.example.": [(QTYPE.A, A("127.0.0.1"))],
    "9.2.0.192.in-addr.arpa.": [(QTYPE.PTR, PTR("liar.example."))],
    "liar.example.": [(QTYPE.A, A("198.51.100.1"))],
    "exists.example.": [(QTYPE.MX, MX("mx.exists.example.", 10))],
    "mx.exists.example.": [(QTYPE.A, A("198.51.100.25"))],
    "aonly.example.": [(QTYPE.A, A("198.51.100.26"))],
    "nullmx.example.": [(QTYPE.MX, MX(".", 0))],
    "fake.example.": [(QTYPE.A, A("127.0.0.1"))],
}


@pytest.fixture(autouse=True)
def _no_load_limit(sandbox):
    """The shared test machine is often loaded: load= would refuse us."""
    sandbox.write_config(load=0)


class ZoneResolver(BaseResolver):
    def resolve(self, request, handler):
        reply = request.reply()
        qname = str(request.q.qname).lower()
        qtype = request.q.qtype
        records = ZONE.get(qname)
        if records is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for t, rdata in records:
            if t == qtype:
                reply.add_answer(RR(qname, t, rdata=rdata, ttl=60))
        return reply


@pytest.fixture
def dns():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    udp = DNSServer(ZoneResolver(), port=port, address="127.0.0.1")
    tcp = DNSServer(ZoneResolver(), port=port, address="127.0.0.1", tcp=True)
    udp.start_thread()
    tcp.start_thread()
    yield "127.0.0.1:%d" % port
    udp.stop()
    tcp.stop()


@pytest.fixture
def sb(sandbox, dns):
    sandbox.write_config(resolver=dns, dns_timeout=2, dns_tries=1)
    sandbox.start_daemon()  # sets up the queue
    return sandbox


def session(sb, peer, lines):
    script = ("\r\n".join(lines + ["QUIT"]) + "\r\n").encode()
    return bs(sb, script, "-R", peer)


def test_verify_from(sb):
    for sender, code, esc in [("a@exists.example", 250, b"2.1.0"),
                              ("a@aonly.example", 250, b"2.1.0"),
                              ("a@nxdomain.example", 553, b"5.1.8"),
                              ("a@nullmx.example", 550, b"5.7.27")]:
        r = session(sb, "192.0.2.7", ["EHLO good.client.example",
                                      "MAIL FROM:<%s>" % sender])
        assert r[2][0] == code and r[2][1][0].startswith(esc), (sender, r)


def test_paranoid(sb):
    sb.write_config(paranoid=True)
    ok = session(sb, "192.0.2.7", ["EHLO good.client.example"])
    assert ok[0][0] == 220
    for peer in ("192.0.2.8", "192.0.2.9"):  # no PTR; PTR not resolving back
        r = session(sb, peer, ["EHLO x.example"])
        assert r[0][0] == 554 and r[0][1][0].startswith(b"5.7.1"), (peer, r)
        assert r[1][0] == 503 and r[-1][0] == 221


def test_checkhelo(sb):
    sb.write_config(checkhelo=True)
    for helo in (sb.hostname, "[127.0.0.1]", "fake.example"):
        r = session(sb, "192.0.2.7", ["EHLO " + helo, "MAIL FROM:<a@exists.example>"])
        assert r[1][0] == 554 and r[1][1][0].startswith(b"5.7.1"), (helo, r)
        assert r[2][0] == 503  # the session only serves QUIT now
    r = session(sb, "192.0.2.7", ["EHLO good.client.example"])
    assert r[1][0] == 250


def test_localmx(sb):
    lines = ["EHLO good.client.example", "MAIL FROM:<a@exists.example>",
             "RCPT TO:<x@elsewhere.example>"]
    assert session(sb, "192.0.2.7", lines)[3][0] == 554
    sb.write_config(localmx=True)
    assert session(sb, "192.0.2.7", lines)[3][0] == 250


def test_trusted_host_name(sb):
    sb.write_config(trusted="good.client.example")
    lines = ["EHLO good.client.example", "MAIL FROM:<a@exists.example>",
             "RCPT TO:<x@elsewhere.example>"]
    assert session(sb, "192.0.2.7", lines)[3][0] == 250
    assert session(sb, "192.0.2.9", lines)[3][0] == 554


def test_received_shows_verified_name(sb):
    u = "%s@%s" % (sb.acc["u1"], sb.hostname)
    r = session(sb, "192.0.2.7", ["EHLO helo.example", "MAIL FROM:<a@exists.example>",
                                  "RCPT TO:<%s>" % u, "DATA",
                                  "Subject: ptr\r\n\r\nx\r\n."])
    assert r[4][0] == 354 and r[5][0] == 250, r
    msgs = sb.wait_for_mail(sb.acc["u1"])
    rec = msgs[0].get_all("Received")[0]
    assert "from helo.example (good.client.example [192.0.2.7])" in rec
