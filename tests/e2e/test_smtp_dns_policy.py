"""Policies that need DNS: paranoid, verify-from, checkhelo, localmx, trusted=
host names, the PTR name in Received:.  A DNS server of our own (dnslib) on
loopback answers; resolver= points the daemon at it.  Remote clients are
played with -bs -R ADDR."""
import socket

import pytest
from dnslib import A, MX, PTR, QTYPE, RCODE, RR
from dnslib.server import BaseResolver, DNSServer

from dnsserver import ZoneServer
from smtpclient import bs

ZONE = {
    # name: [(qtype, rdata)]
    "7.113.0.203.in-addr.arpa.": [(QTYPE.PTR, PTR("good.client.example."))],
    "good.client.example.": [(QTYPE.A, A("203.0.113.7")),
                             (QTYPE.MX, MX("mx.local.example.", 10))],
    "mx.local.example.": [(QTYPE.A, A("127.0.0.1"))],
    "9.113.0.203.in-addr.arpa.": [(QTYPE.PTR, PTR("liar.example."))],
    "liar.example.": [(QTYPE.A, A("198.51.100.1"))],
    "exists.example.": [(QTYPE.MX, MX("mx.exists.example.", 10))],
    "mx.exists.example.": [(QTYPE.A, A("198.51.100.25"))],
    "aonly.example.": [(QTYPE.A, A("198.51.100.26"))],
    "nullmx.example.": [(QTYPE.MX, MX(".", 0))],
    "fake.example.": [(QTYPE.A, A("127.0.0.1"))],
    # MX lists that include us (127.0.0.1 is always us): as the only MX, as a
    # backup behind a better host, and a domain whose address is ours (no MX)
    "mine.example.": [(QTYPE.MX, MX("mx.local.example.", 10))],
    "backed.example.": [(QTYPE.MX, MX("mx.exists.example.", 10)),
                        (QTYPE.MX, MX("mx.local.example.", 20))],
    "bareus.example.": [(QTYPE.A, A("127.0.0.1"))],
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
    port = ZoneServer._free_port()  # free for UDP and TCP both
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
        r = session(sb, "203.0.113.7", ["EHLO good.client.example",
                                      "MAIL FROM:<%s>" % sender])
        assert r[2][0] == code and r[2][1][0].startswith(esc), (sender, r)


def test_paranoid(sb):
    sb.write_config(paranoid=True)
    ok = session(sb, "203.0.113.7", ["EHLO good.client.example"])
    assert ok[0][0] == 220
    for peer in ("203.0.113.8", "203.0.113.9"):  # no PTR; PTR not resolving back
        r = session(sb, peer, ["EHLO x.example"])
        assert r[0][0] == 554 and r[0][1][0].startswith(b"5.7.1"), (peer, r)
        assert r[1][0] == 503 and r[-1][0] == 221


def test_checkhelo(sb):
    sb.write_config(checkhelo=True)
    for helo in (sb.hostname, "[127.0.0.1]", "fake.example"):
        r = session(sb, "203.0.113.7", ["EHLO " + helo, "MAIL FROM:<a@exists.example>"])
        assert r[1][0] == 554 and r[1][1][0].startswith(b"5.7.1"), (helo, r)
        assert r[2][0] == 503  # the session only serves QUIT now
    r = session(sb, "203.0.113.7", ["EHLO good.client.example"])
    assert r[1][0] == 250


def test_localmx(sb):
    lines = ["EHLO good.client.example", "MAIL FROM:<a@exists.example>",
             "RCPT TO:<x@elsewhere.example>"]
    assert session(sb, "203.0.113.7", lines)[3][0] == 554
    sb.write_config(localmx=True)
    assert session(sb, "203.0.113.7", lines)[3][0] == 250


def test_trusted_host_name(sb):
    sb.write_config(trusted="good.client.example")
    lines = ["EHLO good.client.example", "MAIL FROM:<a@exists.example>",
             "RCPT TO:<x@elsewhere.example>"]
    assert session(sb, "203.0.113.7", lines)[3][0] == 250
    assert session(sb, "203.0.113.9", lines)[3][0] == 554


def test_received_shows_verified_name(sb):
    u = "%s@%s" % (sb.acc["u1"], sb.hostname)
    r = session(sb, "203.0.113.7", ["EHLO helo.example", "MAIL FROM:<a@exists.example>",
                                  "RCPT TO:<%s>" % u, "DATA",
                                  "Subject: ptr\r\n\r\nx\r\n."])
    assert r[4][0] == 354 and r[5][0] == 250, r
    msgs = sb.wait_for_mail(sb.acc["u1"])
    rec = msgs[0].get_all("Received")[0]
    assert "from helo.example (good.client.example [203.0.113.7])" in rec


def rcpt_replies(sb, *rcpts):
    r = session(sb, "203.0.113.9", ["EHLO x.example", "MAIL FROM:<a@exists.example>"] +
                ["RCPT TO:<%s>" % a for a in rcpts])
    assert r[2][0] == 250, r
    return [(code, text[0][:5].decode()) for code, text in r[3:3 + len(rcpts)]]


def test_mx_pointing_here_is_accepted_from_anyone(sb):
    """A client that may not relay may still send mail for a domain whose MX list
    names us.  Without mxpool such a domain is ours (the queue runner delivers it
    here), so the local part is checked like one of our own domains."""
    pm = "postmaster@"
    assert rcpt_replies(sb, pm + "mine.example", "nosuchuser9@mine.example",
                        pm + "backed.example", pm + "bareus.example",
                        pm + "exists.example", "a%b@mine.example") == [
        (250, "2.1.5"), (550, "5.1.1"), (250, "2.1.5"), (250, "2.1.5"),
        (554, "5.7.1"), (550, "5.7.1")]


def test_backup_mx_with_mxpool_accepts_for_the_better_mx(sb):
    """mxpool: a backup MX accepts any local part of the domain (the better MX
    judges it) and queues the mail for it; the best MX checks the local part."""
    sb.write_config(mxpool=True)
    assert rcpt_replies(sb, "anyone@backed.example", "nosuchuser9@mine.example",
                        "postmaster@mine.example", "x@exists.example") == [
        (250, "2.1.5"), (550, "5.1.1"), (250, "2.1.5"), (554, "5.7.1")]


def test_mx_check_without_dns_is_temporary(sb):
    """The resolver not answering: we cannot tell whether we are an MX, so the
    client is told to come back (never a permanent refusal, never a pass)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))  # bound and silent: every query times out
        sb.write_config(resolver="127.0.0.1:%d" % s.getsockname()[1], dns_timeout=1,
                        verify_from="0")  # MAIL FROM would need the DNS too
        r = session(sb, "203.0.113.9", ["EHLO x.example", "MAIL FROM:<a@exists.example>",
                                      "RCPT TO:<postmaster@mine.example>"])
    assert r[3][0] == 451 and r[3][1][0].startswith(b"4.4.3"), r
