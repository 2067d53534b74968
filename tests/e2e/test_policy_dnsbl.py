"""dnsbl= and dnsbl-threshold=: clients listed in DNS block lists get the
forbidden= action, with the list's TXT reason.  A dnslib server of our own
answers the lists; remote clients are played with -bs -R ADDR."""
import time

import pytest
from dnslib import AAAA, QTYPE, RCODE, RR, TXT, A
from dnslib.server import BaseResolver, DNSError, DNSServer

from dnsserver import ZoneServer
from smtpclient import bs

LISTED4 = "5.113.0.203"        # 203.0.113.5
LISTED6 = ".".join(reversed("20010db8000000000000000000000042"))  # 2001:db8::42
ZONE = {
    LISTED4 + ".bl.example.": [(QTYPE.A, A("127.0.0.2")),
                               (QTYPE.TXT, TXT("Listed: see http://bl.example/203.0.113.5"))],
    LISTED4 + ".sbl.example.": [(QTYPE.A, A("127.0.0.3"))],
    LISTED4 + ".white.example.": [(QTYPE.A, A("127.0.0.2"))],
    "6.113.0.203.bl.example.": [(QTYPE.A, A("127.0.0.20"))],   # outside 127.0.0.[2..11]
    LISTED6 + ".bl.example.": [(QTYPE.A, A("127.0.0.4")),
                               (QTYPE.TXT, TXT("v6 listed"))],
}
SILENT = ("slow.example.",)


class Resolver(BaseResolver):
    def __init__(self):
        self.queries = []

    def resolve(self, request, handler):
        qname = str(request.q.qname).lower()
        self.queries.append((qname, QTYPE[request.q.qtype]))
        if any(qname.endswith(z) for z in SILENT):
            raise DNSError("silent")  # no answer at all: the client times out
        reply = request.reply()
        recs = ZONE.get(qname)
        if recs is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for t, rdata in recs:
            if t == request.q.qtype:
                reply.add_answer(RR(qname, t, rdata=rdata, ttl=60))
        return reply


@pytest.fixture
def dns():
    port = ZoneServer._free_port()
    res = Resolver()
    udp = DNSServer(res, port=port, address="127.0.0.1")
    tcp = DNSServer(res, port=port, address="127.0.0.1", tcp=True)
    udp.start_thread()
    tcp.start_thread()
    yield "127.0.0.1:%d" % port, res
    udp.stop()
    tcp.stop()


@pytest.fixture
def sb(sandbox, dns):
    sandbox.write_config(resolver=dns[0], dns_timeout=1, dns_tries=1, load=0,
                         verify_from=0)
    return sandbox


def session(sb, peer, lines):
    script = ("\r\n".join(lines + ["QUIT"]) + "\r\n").encode()
    return bs(sb, script, "-R", peer)


def mail(sb, peer):
    u = "%s@%s" % (sb.acc["u1"], sb.hostname)
    return session(sb, peer, ["EHLO c.example", "MAIL FROM:<a@c.example>", "RCPT TO:<%s>" % u,
                              "DATA", "Subject: bl\r\n\r\nbody\r\n."])


def refused(r):
    """The listing is applied at MAIL (so that AUTH could come first)."""
    assert r[0][0] == 220 and r[1][0] == 250, r
    return r[2][0] == 554


def test_listed_client_refused_with_txt_reason(sb):
    sb.write_config(dnsbl="bl.example")
    r = mail(sb, "203.0.113.5")
    assert refused(r) and r[2][1][0].startswith(b"5.7.1"), r
    assert b"listed by bl.example: Listed: see http://bl.example/203.0.113.5" in r[2][1][0]
    assert r[3][0] == 503 and r[4][0] == 503 and r[-1][0] == 221  # only QUIT now
    ok = mail(sb, "203.0.113.7")  # not listed (NXDOMAIN)
    assert not refused(ok) and ok[5][0] == 250, ok


def test_ipv6_nibbles(sb, dns):
    sb.write_config(dnsbl="bl.example")
    r = mail(sb, "2001:db8::42")
    assert refused(r) and b"v6 listed" in r[2][1][0], r
    assert (LISTED6 + ".bl.example.", "A") in dns[1].queries


def test_filter_on_returned_address(sb):
    sb.write_config(dnsbl="bl.example=127.0.0.[2..11]")
    assert refused(mail(sb, "203.0.113.5"))
    assert not refused(mail(sb, "203.0.113.6"))  # answers 127.0.0.20: no match
    sb.write_config(dnsbl="bl.example=127.0.0.[3;20]")
    assert not refused(mail(sb, "203.0.113.5"))
    assert refused(mail(sb, "203.0.113.6"))


def test_weights_and_threshold(sb):
    sb.write_config(dnsbl=["bl.example", "sbl.example"], dnsbl_threshold=2)
    assert refused(mail(sb, "203.0.113.5"))  # 1 + 1
    sb.write_config(dnsbl=["bl.example", "sbl.example", "white.example*-2"])
    assert not refused(mail(sb, "203.0.113.5"))  # 1 + 1 - 2
    sb.write_config(dnsbl=["bl.example*3", "white.example*-2"], dnsbl_threshold=1)
    assert refused(mail(sb, "203.0.113.5"))


def test_forbidden_accept_marks_with_reason(sb):
    sb.write_config(dnsbl="bl.example", forbidden="accept")
    r = mail(sb, "203.0.113.5")
    assert not refused(r) and r[5][0] == 250, r
    sb.runq()
    msgs = sb.wait_for_mail(sb.acc["u1"])
    assert "listed by bl.example: Listed: see" in msgs[0]["X-Spam"]


def test_forbidden_folder(sb):
    import mailbox
    import os
    sb.write_config(dnsbl="bl.example", forbidden="folder:blacklisted")
    r = mail(sb, "203.0.113.5")
    assert r[5][0] == 250, r
    sb.runq()
    path = os.path.join(sb.spool, sb.acc["u1"] + ":blacklisted")
    deadline = time.time() + 10
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.05)
    msgs = list(mailbox.mbox(path, create=False))
    assert len(msgs) == 1 and "bl.example" in msgs[0]["X-Spam"]
    assert sb.mbox(sb.acc["u1"]) == []


def test_list_timing_out_is_skipped(sb):
    sb.write_config(dnsbl=["slow.example", "bl.example"])
    t = time.time()
    r = mail(sb, "203.0.113.7")
    assert not refused(r) and r[5][0] == 250, r
    assert time.time() - t < 15
    assert refused(mail(sb, "203.0.113.5"))  # the other list still counts


def test_lists_asked_together(sb):
    # lists that never answer cost one resolver timeout together, not one
    # each (dns-timeout=1 x dns-tries=1: 4 s when asked one by one)
    slow = ["%s.slow.example" % n for n in "abcd"]
    sb.write_config(dnsbl=slow + ["bl.example"])
    t = time.time()
    assert refused(mail(sb, "203.0.113.5"))
    assert time.time() - t < 3


def test_relay_clients_not_looked_up(sb, dns):
    sb.write_config(dnsbl="bl.example", trusted="[203.0.113.5]")
    assert not refused(mail(sb, "203.0.113.5"))
    assert not any(q[0].endswith("bl.example.") for q in dns[1].queries)


@pytest.mark.parametrize("bad", ["bl..example", "bl.example=127.0.0", "bl.example*x",
                                 "bl.example=127.0.0.[5..2]", "bl.example=1.2.3.4.5"])
def test_bad_entries_refused(sb, bad):
    sb.write_config(dnsbl=bad)
    r = sb.run("postoffice", "-bs", input=b"QUIT\r\n")
    assert r.returncode != 0 and b"dnsbl" in r.stderr, (bad, r)
