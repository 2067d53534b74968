"""relay-map= (relay-map(5)): per-destination next hops, TLS policy, CA and
AUTH credentials.  Two receiving servers (python3-aiosmtpd, not ours) on
loopback ports: mail for a.test goes to the first (plaintext), mail for
b.test to the second, which wants STARTTLS and AUTH, with the certificate
verified against the entry's ca=; a wrong CA defers only that domain; "*"
as the default; ".sub.test" for subdomains; -bv shows the route; a broken
map defers everything remote with the reason; edits are seen at the next run.

Next-hop names (relay-a.test, relay-b.test) come from a test DNS server
(dnsserver.py) that maps them to 127.0.0.1.  The map lives in a directory
under /run made by the test: relay-map= must have a secure path (root's,
not writable by others), which /tmp is not.
"""
import os
import shutil
import smtplib
import tempfile
import time

import pytest

from conftest import IS_ROOT, free_port
from dnsserver import ZoneServer
from tls_relay import Relay, make_ca, make_cert

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="relay-map and its auth= files are "
                                "root's (a secure path, root-only credentials); CI runs as root")

USERS = {"b-user@provider.test": "b pass:word"}


@pytest.fixture(scope="module")
def dns():
    z = ZoneServer({"relay-a.test": [("A", "127.0.0.1")],
                    "relay-b.test": [("A", "127.0.0.1")],
                    "relay-star.test": [("A", "127.0.0.1")],
                    "relay-sub.test": [("A", "127.0.0.1")],
                    "relay-global.test": [("A", "127.0.0.1")]}).start()
    yield z
    z.stop()


@pytest.fixture(scope="module")
def pki():
    d = tempfile.mkdtemp(prefix="po-pki-", dir="/tmp")
    os.chmod(d, 0o755)
    ca = make_ca(d, "TestCA")
    yield {"ca": ca, "bad_ca": make_ca(d, "OtherCA"),
           "b": make_cert(d, ca, "relay-b", ["relay-b.test"])}
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def secure_dir():
    """A directory with a secure path (root's, 0755) for the map and the
    credential files."""
    d = tempfile.mkdtemp(prefix="po-relaymap-", dir="/run")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def write(path, text, mode):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.chown(tmp, 0, 0)
    os.chmod(tmp, mode)
    os.rename(tmp, path)
    return path


class Servers:
    """Server 1 (plaintext, for a.test) and server 2 (STARTTLS required and
    AUTH, for b.test), each on its own free loopback port."""

    def __init__(self, pki):
        self.p1, self.p2 = free_port(), free_port()
        self.s1 = Relay(self.p1).start()
        self.s2 = Relay(self.p2, starttls=pki["b"], users=USERS).start()

    def stop(self):
        self.s1.stop()
        self.s2.stop()


@pytest.fixture
def servers(pki):
    s = Servers(pki)
    yield s
    s.stop()


def configure(sb, dns, sdir, servers, pki, ca=None, extra="", **opts):
    auth = write(os.path.join(sdir, "b.auth"), "b-user@provider.test:b pass:word\n", 0o600)
    text = (f"# per-destination relays\n"
            f"a.test        [relay-a.test]:{servers.p1}\n"
            f"b.test        [relay-b.test]:{servers.p2}  tls=require "
            f"ca={ca or pki['ca'][0]}  auth={auth}\n" + extra)
    path = write(os.path.join(sdir, "relay-map"), text, 0o644)
    sb.write_config(relay_map=path, resolver=dns.resolver, dns_timeout="2s", dns_tries=1,
                    connect_timeout="5s", **opts)
    return path


def send(sb, *rcpts, subject="per destination"):
    msg = f"From: root\nTo: {', '.join(rcpts)}\nSubject: {subject}\n\nhello\n"
    r = sb.sendmail("-i", "-odq", *rcpts, message=msg)
    assert r.returncode == 0, r.stderr


def runq(sb):
    r = sb.runq("-v")
    assert r.returncode == 0, r.stderr
    return r.stderr.decode("utf-8", "replace")


def rcpts(relay):
    return [a for env, _, _ in relay.messages for a in env.rcpt_tos]


def mailq(sb):
    return sb.mailq().stdout.decode("utf-8", "replace")


def test_two_domains_two_servers(sandbox, dns, pki, servers, secure_dir):
    configure(sandbox, dns, secure_dir, servers, pki)
    send(sandbox, "one@a.test", "two@b.test")
    err = runq(sandbox)
    assert rcpts(servers.s1) == ["one@a.test"], err
    assert rcpts(servers.s2) == ["two@b.test"], err
    _, tls1, auth1 = servers.s1.messages[0]
    _, tls2, auth2 = servers.s2.messages[0]
    assert not tls1 and not auth1  # server 1 offers neither
    assert tls2 and auth2
    assert servers.s2.auth == [("PLAIN", "b-user@provider.test", "b pass:word")]
    assert "certificate verified" in err and "b pass" not in err
    assert sandbox.queue_files() == []


def test_wrong_ca_defers_only_that_domain(sandbox, dns, pki, servers, secure_dir):
    path = configure(sandbox, dns, secure_dir, servers, pki, ca=pki["bad_ca"][0])
    send(sandbox, "one@a.test", "two@b.test")
    err = runq(sandbox)
    assert rcpts(servers.s1) == ["one@a.test"], err
    assert servers.s2.messages == [] and servers.s2.auth == [], err
    q = mailq(sandbox)
    assert len(sandbox.queue_files()) == 1
    for piece in ("two@b.test", "4.7.5", "certificate verification failed",
                  f"relay-map {path}:3"):
        assert piece in q, q
    assert "one@a.test" not in q, q
    # the admin fixes the CA: the map is re-read at the next run
    configure(sandbox, dns, secure_dir, servers, pki)
    err = runq(sandbox)
    assert rcpts(servers.s2) == ["two@b.test"], err
    assert sandbox.queue_files() == []


def test_default_entry_and_subdomains(sandbox, dns, pki, servers, secure_dir):
    p3, p4 = free_port(), free_port()
    star, sub = Relay(p3).start(), Relay(p4).start()
    try:
        configure(sandbox, dns, secure_dir, servers, pki,
              extra=f".sub.test [relay-sub.test]:{p4}\n* relay-star.test:{p3}\n")
        send(sandbox, "x@deep.sub.test", "y@sub.test", "z@elsewhere.test", "w@a.test")
        err = runq(sandbox)
        assert rcpts(sub) == ["x@deep.sub.test"], err
        assert sorted(rcpts(star)) == ["y@sub.test", "z@elsewhere.test"], err
        assert rcpts(servers.s1) == ["w@a.test"], err
        assert sandbox.queue_files() == []
    finally:
        star.stop()
        sub.stop()


def test_global_relay_host_is_the_default(sandbox, dns, pki, servers, secure_dir):
    """No entry for a domain: relay-host= (and its options) as before; a
    [name] in relay-host= is not looked up in MX records."""
    p3 = free_port()
    glob = Relay(p3).start()
    try:
        configure(sandbox, dns, secure_dir, servers, pki, relay_host=f"[relay-global.test]:{p3}")
        send(sandbox, "x@other.test", "w@a.test")
        err = runq(sandbox)
        assert rcpts(glob) == ["x@other.test"], err
        assert rcpts(servers.s1) == ["w@a.test"], err
    finally:
        glob.stop()


def test_tls_none_and_may(sandbox, dns, pki, secure_dir):
    """tls=none never starts TLS, even to a server offering STARTTLS."""
    port = free_port()
    s = Relay(port, starttls=pki["b"]).start()
    s.ctl.SMTP_kwargs["require_starttls"] = False
    try:
        path = write(os.path.join(secure_dir, "relay-map"),
                     f"b.test [relay-b.test]:{port} tls=none\n", 0o644)
        sandbox.write_config(relay_map=path, resolver=dns.resolver, dns_timeout="2s",
                             dns_tries=1)
        send(sandbox, "two@b.test")
        err = runq(sandbox)
        assert rcpts(s) == ["two@b.test"], err
        assert s.messages[0][1] is False and "<< STARTTLS" not in err, err
    finally:
        s.stop()


def test_bv_shows_the_route(sandbox, dns, pki, servers, secure_dir):
    path = configure(sandbox, dns, secure_dir, servers, pki, extra="* -\n")
    r = sandbox.run("sendmail", "-bv", "two@b.test")
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    assert f"through relay-map {path}:3 next hop [relay-b.test]:{servers.p2}" in out, out
    assert f"tls=require, ca={pki['ca'][0]}, auth={secure_dir}/b.auth" in out, out
    assert "relay-b.test (preference 0): 127.0.0.1" in out, out
    r = sandbox.run("sendmail", "-bv", "one@a.test")
    out = r.stdout.decode()
    assert f"relay-map {path}:2 next hop [relay-a.test]:{servers.p1}, tls=may" in out, out


def test_broken_map_defers_everything_remote(sandbox, dns, pki, servers, secure_dir):
    path = configure(sandbox, dns, secure_dir, servers, pki,
                 extra="c.test [relay-a.test] password=secret\n")
    send(sandbox, "one@a.test")
    err = runq(sandbox)
    assert servers.s1.messages == [], err
    q = mailq(sandbox)
    assert f"4.3.5 relay-map={path} line 4: unknown option password" in q, q
    assert "secret" not in q
    # an insecure map (writable by others) is refused the same way
    os.chmod(path, 0o666)
    runq(sandbox)
    assert "is writable by everyone" in mailq(sandbox)
    os.chmod(path, 0o644)


def test_auth_file_open_to_others_defers_that_destination(sandbox, dns, pki, servers,
                                                          secure_dir):
    configure(sandbox, dns, secure_dir, servers, pki)
    os.chmod(os.path.join(secure_dir, "b.auth"), 0o644)
    send(sandbox, "one@a.test", "two@b.test")
    err = runq(sandbox)
    assert rcpts(servers.s1) == ["one@a.test"], err
    assert servers.s2.auth == [], err
    q = mailq(sandbox)
    assert "4.3.5 auth=" in q and "chmod 600" in q and "relay-map" in q, q


def test_daemon_delivers_per_destination(sandbox, dns, pki, servers, secure_dir):
    """The daemon's path: a delivery worker (root) reads the credentials the
    message's destinations name, its unprivileged child delivers."""
    configure(sandbox, dns, secure_dir, servers, pki)
    sandbox.start_daemon()
    with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=30) as s:
        s.sendmail("sender@mx.test.example", ["one@a.test", "two@b.test"],
                   b"Subject: from the daemon\r\n\r\nhi\r\n")
    deadline = time.time() + 20
    while (not servers.s1.messages or not servers.s2.messages) and time.time() < deadline:
        time.sleep(0.1)
    assert rcpts(servers.s1) == ["one@a.test"]
    assert rcpts(servers.s2) == ["two@b.test"]
    assert servers.s2.messages[0][1:] == (True, True)
    sandbox.wait_queue_empty()


def test_smtps_entry_with_auth(sandbox, dns, pki, secure_dir):
    """tls=smtps (TLS from the first byte) on a port other than 465, with AUTH
    and the entry's CA."""
    port = free_port()
    s = Relay(port, implicit=pki["b"], users=USERS).start()
    try:
        auth = write(os.path.join(secure_dir, "b.auth"), "b-user@provider.test:b pass:word\n",
                     0o600)
        path = write(os.path.join(secure_dir, "relay-map"),
                     f"b.test [relay-b.test]:{port} tls=smtps ca={pki['ca'][0]} auth={auth}\n",
                     0o644)
        sandbox.write_config(relay_map=path, resolver=dns.resolver, dns_timeout="2s",
                             dns_tries=1)
        send(sandbox, "two@b.test")
        err = runq(sandbox)
        assert rcpts(s) == ["two@b.test"], err
        assert s.messages[0][1:] == (True, True)
        assert "<< STARTTLS" not in err and "certificate verified" in err
    finally:
        s.stop()


def test_connection_not_reused_across_credentials(sandbox, dns, pki, servers, secure_dir):
    """Two destinations on the same server and port, one with auth= and one
    without: the second never rides on the first one's authenticated
    connection (the server wants AUTH, so it is deferred with 530)."""
    configure(sandbox, dns, secure_dir, servers, pki, delivery_processes=1,
              extra=f"c.test [relay-b.test]:{servers.p2} tls=require ca={pki['ca'][0]}\n")
    send(sandbox, "two@b.test", subject="first")
    send(sandbox, "three@c.test", subject="second")
    err = runq(sandbox)
    assert rcpts(servers.s2) == ["two@b.test"], err
    assert "REUSE" not in err, err
    q = mailq(sandbox)
    assert "three@c.test" in q and "530" in q, q
