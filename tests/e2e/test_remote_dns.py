"""The resolver (c-ares) and MX routing against a real DNS server on loopback
(tests/e2e/dnsserver.py, dnslib): preferences, shuffling, CNAME chains,
NXDOMAIN, SERVFAIL/REFUSED/silence, null MX, MX pointing at us, AAAA-only
hosts, truncated answers (TCP retry), hostile names."""
import pytest

from dnsserver import ZoneServer
from remote_util import po_remote

# 192.0.2.2 is this machine's own address on some CI hosts: test data uses
# 198.51.100.0/24 and 203.0.113.0/24 for "other" hosts.
ZONE = {
    "multi.test": [("MX", 20, "mx2.multi.test"), ("MX", 10, "mx1.multi.test"),
                   ("MX", 30, "mx3.multi.test")],
    "mx1.multi.test": [("A", "198.51.100.1")],
    "mx2.multi.test": [("A", "198.51.100.2"), ("AAAA", "2001:db8::2")],
    "mx3.multi.test": [("AAAA", "2001:db8::3")],
    "equal.test": [("MX", 10, f"e{i}.equal.test") for i in range(4)] + [("MX", 5, "best.equal.test")],
    **{f"e{i}.equal.test": [("A", f"198.51.100.{10 + i}")] for i in range(4)},
    "best.equal.test": [("A", "198.51.100.9")],
    "alias.test": [("CNAME", "alias2.test")],
    "alias2.test": [("CNAME", "multi.test")],
    "split.test": [("CNAME", "multi.test")],      # served without the chain
    "loop1.test": [("CNAME", "loop2.test")],
    "loop2.test": [("CNAME", "loop1.test")],
    "null.test": [("MX", 0, ".")],
    "noaddr.test": [("MX", 10, "gone.noaddr.test")],
    "plain.test": [("A", "203.0.113.7")],        # no MX: the A record
    "txtonly.test": [("PTR", "x.test")],          # exists, no MX/A/AAAA
    "us.test": [("MX", 10, "localhost")],
    "usbackup.test": [("MX", 5, "mx1.multi.test"), ("MX", 10, "me.usbackup.test"),
                      ("MX", 10, "peer.usbackup.test"), ("MX", 20, "mx2.multi.test")],
    "me.usbackup.test": [("A", "127.0.0.1")],
    "peer.usbackup.test": [("A", "198.51.100.99")],
    "byname.test": [("MX", 10, "client.test"), ("MX", 20, "mx1.multi.test")],
    "client.test": [("A", "203.0.113.50")],
    "v6only.test": [("MX", 10, "mx.v6only.test")],
    "mx.v6only.test": [("AAAA", "2001:db8::66")],
    "big.test": [("MX", i, f"mx{i}.a-rather-long-label-to-fill-the-packet.multi.test")
                 for i in range(40)],
    "hostile.test": [("MX", 10, [b"mx\n\x00evil", b"test"]), ("MX", 20, [b"bad name", b"test"]),
                     ("MX", 30, "mx1.multi.test")],
    "allhostile.test": [("MX", 10, [b"evil\r\nR<x>", b"test"])],
    "1.100.51.198.in-addr.arpa": [("PTR", "mx1.multi.test")],
    "2.100.51.198.in-addr.arpa": [("PTR", [b"bad\nptr", b"test"])],
}
BEHAVE = {"servfail.test": "servfail", "refused.test": "refused", "silent.test": "silent",
          "big.test": "truncate", "flaky.multi.test": "servfail"}


@pytest.fixture(scope="module")
def dns():
    z = ZoneServer(ZONE, behave=BEHAVE, nochase={"split.test"}).start()
    yield z
    z.stop()


def run(dns, *args, extra=()):
    rc, out, err = po_remote(*args, opts=[f"resolver={dns.resolver}", "dns-timeout=1",
                                          "dns-tries=1", "hostname=client.test", *extra])
    assert rc == 0, err
    return out.splitlines(), err


def test_mx_sorted_by_preference(dns):
    out, _ = run(dns, "mx", "multi.test")
    assert out == ["ok", "10 mx1.multi.test", "20 mx2.multi.test", "30 mx3.multi.test"]
    out, _ = run(dns, "route", "multi.test")
    assert out == ["10 mx1.multi.test 198.51.100.1:25",
                   "20 mx2.multi.test 2001:db8::2:25 198.51.100.2:25",   # IPv6 first
                   "30 mx3.multi.test 2001:db8::3:25"]                    # AAAA-only host


def test_equal_preferences_shuffled(dns):
    firsts = set()
    for _ in range(24):
        out, _ = run(dns, "mx", "equal.test")
        assert out[1] == "5 best.equal.test"          # the best one always first
        assert sorted(out[2:]) == [f"10 e{i}.equal.test" for i in range(4)]
        firsts.add(out[2])
    # 24 draws of 4 equally likely hosts: all in the same place has p = 4^-23
    assert len(firsts) > 1


def test_cname_chain(dns):
    out, _ = run(dns, "mx", "alias.test")
    assert out[0] == "ok" and out[1] == "10 mx1.multi.test"
    # the resolver answered only the CNAME: the client asks again for the target
    out, _ = run(dns, "mx", "split.test")
    assert out[0] == "ok" and out[1] == "10 mx1.multi.test"
    assert ("multi.test", "MX", "udp") in dns.queries


def test_cname_loop_is_temporary(dns):
    out, _ = run(dns, "mx", "loop1.test")
    assert out == ["tempfail"]


def test_nxdomain_and_nodata(dns):
    assert run(dns, "mx", "nowhere.test")[0] == ["nxdomain"]
    assert run(dns, "route", "nowhere.test")[0] == ["permfail 5.1.2 domain nowhere.test does not exist"]
    assert run(dns, "mx", "plain.test")[0] == ["nodata"]
    assert run(dns, "route", "plain.test")[0] == ["0 plain.test 203.0.113.7:25"]
    assert run(dns, "route", "txtonly.test")[0] == [
        "permfail 5.4.4 no mail host of domain txtonly.test has an address"]
    assert run(dns, "route", "noaddr.test")[0][0].startswith("permfail 5.4.4 ")


@pytest.mark.parametrize("name", ["servfail.test", "refused.test", "silent.test"])
def test_server_failures_are_temporary(dns, name):
    assert run(dns, "mx", name)[0] == ["tempfail"]
    out, _ = run(dns, "route", name)
    assert out[0].startswith("tempfail 4.4.3 ")


def test_null_mx(dns):
    assert run(dns, "mx", "null.test")[0] == ["ok", "0 ."]
    assert run(dns, "route", "null.test")[0] == [
        "permfail 5.1.10 domain null.test accepts no mail (null MX)"]


def test_mx_pointing_at_us(dns):
    # our only MX is us (localhost): a loop
    out, _ = run(dns, "route", "us.test")
    assert out[0].startswith("permfail 5.4.6 ")
    assert run(dns, "here", "us.test")[0] == ["yes"]
    # we are a backup at 10: only the more preferred host is tried; our peer at
    # the same preference and the worse one are skipped
    out, _ = run(dns, "route", "usbackup.test")
    assert out == ["5 mx1.multi.test 198.51.100.1:25"]
    assert run(dns, "here", "usbackup.test")[0] == ["yes"]
    assert run(dns, "here", "usbackup.test", extra=["mxpool"])[0] == ["no"]
    # an MX host named like us (hostname=client.test) counts as us by name
    out, _ = run(dns, "route", "byname.test")
    assert out[0].startswith("permfail 5.4.6 ")
    assert run(dns, "here", "multi.test")[0] == ["no"]


def test_literals(dns):
    assert run(dns, "route", "[198.51.100.77]")[0] == ["0 [198.51.100.77] 198.51.100.77:25"]
    assert run(dns, "route", "[IPv6:2001:db8::77]")[0] == ["0 [IPv6:2001:db8::77] 2001:db8::77:25"]
    assert run(dns, "route", "[127.0.0.1]")[0][0].startswith("permfail 5.4.6 ")
    assert run(dns, "route", "[999.1.1.1]")[0][0].startswith("permfail 5.1.2 ")


def test_relay_host(dns):
    out, _ = run(dns, "route", "anything.example", extra=["relay-host=multi.test:2525"])
    assert out[0] == "10 mx1.multi.test 198.51.100.1:2525"
    out, _ = run(dns, "route", "anything.example", extra=["relay-host=[198.51.100.5]"])
    assert out == ["0 [198.51.100.5] 198.51.100.5:25"]
    out, _ = run(dns, "route", "x.example", extra=["relay-host=[IPv6:2001:db8::5]:587"])
    assert out == ["0 [IPv6:2001:db8::5] 2001:db8::5:587"]
    # a relay-host on this machine with its own port is a separate service
    out, _ = run(dns, "route", "x.example", extra=["relay-host=[127.0.0.1]:10025"])
    assert out == ["0 [127.0.0.1] 127.0.0.1:10025"]
    # ... on port 25 it is us: a loop, but a relay-host problem never bounces mail
    out, _ = run(dns, "route", "x.example", extra=["relay-host=[127.0.0.1]"])
    assert out[0].startswith("tempfail 4.4.4 relay-host: ")
    out, _ = run(dns, "route", "x.example", extra=["relay-host=nowhere.test"])
    assert out[0].startswith("tempfail 4.4.4 ")


def test_aaaa_only(dns):
    assert run(dns, "addrs", "mx.v6only.test")[0] == ["ok 2001:db8::66"]
    assert run(dns, "route", "v6only.test")[0] == ["10 mx.v6only.test 2001:db8::66:25"]


def test_truncated_answer_retried_over_tcp(dns):
    out, _ = run(dns, "mx", "big.test")
    assert out[0] == "ok" and len(out) == 41
    assert ("big.test", "MX", "udp") in dns.queries
    assert ("big.test", "MX", "tcp") in dns.queries


def test_hostile_names_dropped(dns):
    out, err = run(dns, "mx", "hostile.test")
    assert out == ["ok", "30 mx1.multi.test"]
    out, err = run(dns, "mx", "allhostile.test")
    assert out == ["tempfail"]
    assert "invalid host name" in err
    for line in err.splitlines():
        assert all(0x20 <= ord(c) < 0x7f for c in line)


def test_ptr(dns):
    assert run(dns, "ptr", "198.51.100.1")[0] == ["ok mx1.multi.test"]
    assert run(dns, "ptr", "198.51.100.2")[0] == ["tempfail -"]   # invalid name only
    assert run(dns, "ptr", "198.51.100.3")[0] == ["nxdomain -"]
    assert run(dns, "ptr", "::ffff:198.51.100.1")[0] == ["ok mx1.multi.test"]  # v4-mapped
    assert run(dns, "ptr", "2001:db8::1")[0] == ["nxdomain -"]
    assert ("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
            "PTR", "udp") in dns.queries
