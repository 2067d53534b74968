"""Relay policy and the open-relay battery.  A remote client is played with
`postoffice -bs -R ADDR` (the session then decides everything for ADDR as for
a network client); loopback clients of the daemon may relay."""
import pytest

from smtpclient import Raw, bs

REMOTE = "203.0.113.7"  # TEST-NET-3: never one of our addresses

# (recipient, why it must not relay)
BATTERY = [
    "victim@victim.example",
    "victim%victim.example@{us}",
    "victim%victim.example@[127.0.0.1]",
    "victim.example!victim@{us}",
    "victim.example!victim",
    "<@{us}:victim@victim.example>",
    "<@{us},@other.example:victim@victim.example>",
    '"victim@victim.example"@{us}',
    '"victim@victim.example"',
    '"victim%victim.example"@{us}',
    "victim@[203.0.113.99]",
    "victim@[IPv6:2001:db8::99]",
    "victim@victim.example.",
    "victim@VICTIM.Example",
    "victim@{us}.victim.example",
    "victim@victim.example@{us}",
    "victim@victim.example%{us}",
    "@victim.example:victim@{us}.invalid",
    "victim@{us}@victim.example",
    "nosuchuser@{us}",
]


@pytest.fixture(autouse=True)
def _no_load_limit(sandbox):
    """The shared test machine is often loaded: load= would refuse us."""
    sandbox.write_config(load=0)


@pytest.fixture
def sb(sandbox):
    sandbox.start_daemon()  # creates the queue directory the session checks
    return sandbox


def session(sb, rcpts, peer=REMOTE, helo="client.example", sender="a@[203.0.113.1]"):
    """replies[0] greeting, [1] EHLO, [2] MAIL, [3...] RCPTs, last QUIT."""
    lines = ["EHLO " + helo, "MAIL FROM:<%s>" % sender]
    for r in rcpts:
        lines.append("RCPT TO:" + (r if r.startswith("<") else "<%s>" % r))
    lines.append("QUIT")
    script = ("\r\n".join(lines) + "\r\n").encode()
    args = ("-R", peer) if peer else ()
    return bs(sb, script, *args)


@pytest.mark.parametrize("rcpt", BATTERY)
def test_open_relay_battery(sb, rcpt):
    r = rcpt.replace("{us}", sb.hostname)
    replies = session(sb, [r])
    assert replies[2][0] == 250, replies  # MAIL
    code, lines = replies[3]
    assert 500 <= code < 600, (r, code, lines)


def test_relay_denied_code(sb):
    replies = session(sb, ["victim@victim.example"])
    code, lines = replies[3]
    assert code == 554 and lines[0].startswith(b"5.7.1"), lines


def test_local_recipient_variants_accepted(sb):
    u = sb.acc["u1"]
    ok = ["%s@%s" % (u, sb.hostname), "%s@%s" % (u, sb.hostname.upper()),
          "postmaster@%s" % sb.hostname, "postmaster", "Postmaster"]
    replies = session(sb, ok)
    assert [r[0] for r in replies[3:3 + len(ok)]] == [250] * len(ok), replies


def test_trailing_dot_domain_refused(sb):
    """RFC 5321 Domain has no trailing dot: refused, not taken as our domain."""
    replies = session(sb, ["%s@%s." % (sb.acc["u1"], sb.hostname.upper())])
    code, lines = replies[3]
    assert code == 553 and lines[0].startswith(b"5.1.3") and b"dot" in lines[0], lines


def test_loopback_client_may_relay(sb):
    c = Raw(sb.port)
    c.reply()
    c.cmd("EHLO client.example")
    c.cmd("MAIL FROM:<a@x.example>")
    assert c.cmd("RCPT TO:<someone@elsewhere.example>")[0] == 250
    c.close()


def test_trusted_networks(sandbox):
    sandbox.write_config(trusted=["203.0.113.0/28", "[198.51.100.9]", "2001:db8::/32"])
    sandbox.start_daemon()
    for peer, allowed in [("203.0.113.7", True), ("203.0.113.99", False),
                          ("198.51.100.9", True), ("198.51.100.10", False),
                          ("2001:db8::5", True), ("2001:db9::5", False)]:
        replies = session(sandbox, ["x@elsewhere.example"], peer=peer)
        code = replies[3][0]
        assert (code == 250) == allowed, (peer, replies)


def test_relay_option_opens_everything(sandbox):
    sandbox.write_config(relay=True)
    sandbox.start_daemon()
    replies = session(sandbox, ["x@elsewhere.example"])
    assert replies[3][0] == 250


def test_own_domain_sender_from_outside(sb):
    replies = session(sb, [], sender="%s@%s" % (sb.acc["u1"], sb.hostname))
    code, lines = replies[2]
    assert code == 550 and lines[0].startswith(b"5.7.1")


def test_verify_from_off(sandbox):
    sandbox.write_config(verify_from=0)
    sandbox.start_daemon()
    replies = session(sandbox, [], sender="%s@%s" % (sandbox.acc["u1"], sandbox.hostname))
    assert replies[2][0] == 250


def test_recipient_limit(sandbox):
    sandbox.write_config(max_recipients=2)
    sandbox.start_daemon()
    u = "%s@%s" % (sandbox.acc["u1"], sandbox.hostname)
    p = "postmaster@%s" % sandbox.hostname
    replies = session(sandbox, [u, p, "%s@%s" % (sandbox.acc["u2"], sandbox.hostname)],
                      peer=None)
    assert replies[3][0] == 250 and replies[4][0] == 250
    code, lines = replies[5]
    assert code == 452 and lines[0].startswith(b"4.5.3")


def test_bad_r_address(sb):
    r = sb.run("postoffice", "-bs", "-R", "not-an-ip", input=b"QUIT\r\n")
    assert r.returncode == 64
    assert b"not-an-ip" in r.stderr
