"""postoffice as a smarthost client: relay-host through a provider-like relay
(python3-aiosmtpd) that wants STARTTLS (587) or TLS from the first byte (465)
and AUTH, with the certificate verified against relay-tls-ca= and the relay
host's name; relay-auth= credentials; what is deferred and why (mailq); and
opportunistic STARTTLS to MX hosts (in network namespaces, port 25).

The relay host is a name, relay.test, that a test DNS server (dnsserver.py)
maps to 127.0.0.1; the relays listen on free loopback ports.  Certificates
are made by each test with the openssl command (tls_relay.py).
"""
import email
import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import IS_ROOT, free_port
from dnsserver import ZoneServer
from tls_relay import BrokenTLS, Relay, make_ca, make_cert

pytestmark = pytest.mark.skipif(not IS_ROOT, reason="relay-host, relay-auth and relay-tls "
                                "are root-only options (and relay-auth must be root's file); "
                                "CI runs as root")

USERS = {"box@provider.test": "s3cret:with colon"}


@pytest.fixture(scope="module")
def dns():
    z = ZoneServer({"relay.test": [("A", "127.0.0.1")],
                    "other.test": [("A", "127.0.0.1")]}).start()
    yield z
    z.stop()


@pytest.fixture(scope="module")
def pki():
    # the CA file is read by the delivery process as user=: a directory it can enter
    d = tempfile.mkdtemp(prefix="po-pki-", dir="/tmp")
    os.chmod(d, 0o755)
    ca = make_ca(d, "Test CA")
    bad_ca = make_ca(d, "Other CA")
    yield {"dir": d, "ca": ca, "bad_ca": bad_ca,
            "relay": make_cert(d, ca, "relay", ["relay.test"]),
            "relay_rsa": make_cert(d, ca, "relay-rsa", ["relay.test"], rsa=True),
            "wrongname": make_cert(d, ca, "elsewhere", ["elsewhere.test"]),
            "ip": make_cert(d, ca, "ip", ["IP:127.0.0.1"])}
    shutil.rmtree(d, ignore_errors=True)


def auth_file(sb, text="box@provider.test:s3cret:with colon\n", mode=0o600):
    p = os.path.join(sb.dir, "relay-auth")
    with open(p, "w") as f:
        f.write(text)
    os.chown(p, 0, 0)
    os.chmod(p, mode)
    return p


def configure(sb, dns, port, **opts):
    sb.write_config(relay_host=f"relay.test:{port}", resolver=dns.resolver, dns_timeout="2s",
                    dns_tries=1, connect_timeout="5s", **opts)


def send_and_run(sb, rcpt="friend@far.test", subject="via the smarthost"):
    msg = f"From: root\nTo: {rcpt}\nSubject: {subject}\n\nhello through the relay\n"
    r = sb.sendmail("-i", "-odq", rcpt, message=msg)
    assert r.returncode == 0, r.stderr
    r = sb.runq("-v")
    assert r.returncode == 0, r.stderr
    return r.stderr.decode("utf-8", "replace")


def mailq(sb):
    r = sb.mailq()
    return r.stdout.decode("utf-8", "replace")


def received(relay):
    """The messages the relay took, read with the email module."""
    return [email.message_from_bytes(env.original_content) for env, _, _ in relay.messages]


@pytest.mark.parametrize("cert", ["relay", "relay_rsa"])
def test_587_starttls_auth_delivers(sandbox, dns, pki, cert):
    port = free_port()
    relay = Relay(port, starttls=pki[cert], users=USERS).start()
    try:
        configure(sandbox, dns, port, relay_tls_ca=pki["ca"][0], relay_auth=auth_file(sandbox))
        err = send_and_run(sandbox)
        assert len(relay.messages) == 1, err
        env, tls, authed = relay.messages[0]
        assert tls and authed
        assert env.rcpt_tos == ["friend@far.test"]
        assert received(relay)[0]["Subject"] == "via the smarthost"
        assert relay.auth == [("PLAIN", "box@provider.test", "s3cret:with colon")]
        assert "certificate verified" in err and "TLSv1.3" in err
        assert "STARTTLS" in err and "status=sent" in err
        # the secret is nowhere: not in the transcript, not in the log lines
        assert "s3cret" not in err and "AUTH PLAIN (credentials)" in err
        import base64
        assert base64.b64encode(b"\0box@provider.test\0s3cret:with colon").decode() not in err
        assert sandbox.queue_files() == []
    finally:
        relay.stop()


def test_465_implicit_tls_auth_delivers(sandbox, dns, pki):
    port = free_port()
    relay = Relay(port, implicit=pki["relay"], users=USERS).start()
    try:
        configure(sandbox, dns, port, relay_tls="smtps", relay_tls_ca=pki["ca"][0],
                  relay_auth=auth_file(sandbox))
        err = send_and_run(sandbox)
        assert len(relay.messages) == 1, err
        assert relay.messages[0][1:] == (True, True)
        assert "STARTTLS" not in err  # TLS from the first byte
        assert "certificate verified" in err
        assert received(relay)[0].get_payload().rstrip() == "hello through the relay"
    finally:
        relay.stop()


def test_auth_login_when_plain_is_not_offered(sandbox, dns, pki):
    port = free_port()
    relay = Relay(port, starttls=pki["relay"], users=USERS)
    relay.ctl.SMTP_kwargs["auth_exclude_mechanism"] = ["PLAIN"]
    relay.start()
    try:
        configure(sandbox, dns, port, relay_tls_ca=pki["ca"][0], relay_auth=auth_file(sandbox))
        err = send_and_run(sandbox)
        assert len(relay.messages) == 1, err
        assert relay.auth == [("LOGIN", "box@provider.test", "s3cret:with colon")]
        assert "(user name)" in err and "(password)" in err and "s3cret" not in err
    finally:
        relay.stop()


def deferred(sb, relay, err, *expect):
    """Nothing reached the relay, the message is queued, and mailq and the
    run's log show each expected piece of the reason."""
    assert relay.messages == [], err
    q = mailq(sb)
    assert len(sb.queue_files()) == 1, q
    for piece in expect:
        assert piece in q, q
        assert piece in err, err
    return q


def test_wrong_ca_defers(sandbox, dns, pki):
    port = free_port()
    relay = Relay(port, starttls=pki["relay"], users=USERS).start()
    try:
        configure(sandbox, dns, port, relay_tls_ca=pki["bad_ca"][0],
                  relay_auth=auth_file(sandbox))
        err = send_and_run(sandbox)
        deferred(sandbox, relay, err, "4.7.5", "certificate verification failed")
        assert relay.auth == []  # the password never went to an unverified host
    finally:
        relay.stop()


def test_wrong_hostname_defers(sandbox, dns, pki):
    port = free_port()
    relay = Relay(port, starttls=pki["wrongname"], users=USERS).start()
    try:
        configure(sandbox, dns, port, relay_tls_ca=pki["ca"][0], relay_auth=auth_file(sandbox))
        err = send_and_run(sandbox)
        deferred(sandbox, relay, err, "4.7.5", "certificate verification failed",
                 "hostname mismatch")
        assert relay.auth == []
    finally:
        relay.stop()


def test_wrong_password_defers_with_the_servers_reason(sandbox, dns, pki):
    port = free_port()
    relay = Relay(port, starttls=pki["relay"], users=USERS).start()
    try:
        configure(sandbox, dns, port, relay_tls_ca=pki["ca"][0],
                  relay_auth=auth_file(sandbox, "box@provider.test:wrong\n"))
        err = send_and_run(sandbox)
        q = deferred(sandbox, relay, err, "4.7.8", "AUTH PLAIN refused",
                     "535 5.7.8 Authentication credentials invalid")
        assert "wrong" not in q and "wrong" not in err.replace("wrong password", "")
        # one attempt, not one per address: a provider may lock the account
        assert len(relay.auth) == 1
        # deferred, not bounced: nothing went back to the sender
        assert not os.path.exists(sandbox.mbox_path("root")) or \
            "Undelivered" not in open(sandbox.mbox_path("root")).read()
    finally:
        relay.stop()


def test_require_without_starttls_never_sends_in_plaintext(sandbox, dns, pki):
    port = free_port()
    # a relay that would take AUTH and mail without TLS
    relay = Relay(port, users=USERS, auth_plaintext=True).start()
    try:
        configure(sandbox, dns, port, relay_auth=auth_file(sandbox))  # require: the default
        err = send_and_run(sandbox)
        deferred(sandbox, relay, err, "4.7.4", "does not offer STARTTLS")
        assert relay.auth == []
        assert "MAIL FROM" not in err
    finally:
        relay.stop()


def test_unreadable_ca_file_defers(sandbox, dns, pki):
    port = free_port()
    relay = Relay(port, starttls=pki["relay"], users=USERS).start()
    try:
        ca = os.path.join(sandbox.dir, "ca.pem")
        shutil.copy(pki["ca"][0], ca)
        os.chmod(ca, 0o600)  # root's only: the delivery process (user=) cannot read it
        configure(sandbox, dns, port, relay_tls_ca=ca, relay_auth=auth_file(sandbox))
        err = send_and_run(sandbox)
        deferred(sandbox, relay, err, "4.7.5", f"relay-tls-ca={ca} cannot be read by user=")
        assert relay.auth == []
    finally:
        relay.stop()


def test_relay_tls_require_without_auth(sandbox, dns, pki):
    port = free_port()
    relay = Relay(port).start()  # no STARTTLS, no AUTH
    try:
        configure(sandbox, dns, port, relay_tls="require")
        err = send_and_run(sandbox)
        deferred(sandbox, relay, err, "4.7.4")
    finally:
        relay.stop()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_relay_auth_file_open_to_others_is_refused(sandbox, dns, pki, mode):
    port = free_port()
    relay = Relay(port, starttls=pki["relay"], users=USERS).start()
    try:
        configure(sandbox, dns, port, relay_tls_ca=pki["ca"][0],
                  relay_auth=auth_file(sandbox, mode=mode))
        err = send_and_run(sandbox)
        deferred(sandbox, relay, err, "4.3.5", "chmod 600", f"mode {mode:04o}")
        assert relay.auth == []
    finally:
        relay.stop()


def test_relay_auth_file_bad_line(sandbox, dns, pki):
    port = free_port()
    relay = Relay(port, starttls=pki["relay"], users=USERS).start()
    try:
        configure(sandbox, dns, port, relay_tls_ca=pki["ca"][0],
                  relay_auth=auth_file(sandbox, "# provider\n\njust-a-password-no-user\n"))
        err = send_and_run(sandbox)
        deferred(sandbox, relay, err, "4.3.5", "line 3 is not user:password")
        assert "just-a-password" not in err
    finally:
        relay.stop()


def test_relay_wants_auth_but_none_configured_defers(sandbox, dns, pki):
    """530 from the relay host is the administrator's problem: deferred, not bounced."""
    port = free_port()
    relay = Relay(port, starttls=pki["relay"], users=USERS).start()
    try:
        configure(sandbox, dns, port, relay_tls_ca=pki["ca"][0])  # may: no relay-auth
        err = send_and_run(sandbox)
        deferred(sandbox, relay, err, "4.7.0", "requires authentication", "530")
    finally:
        relay.stop()


def test_relay_tls_may_unverified_still_delivers(sandbox, dns, pki):
    """relay-tls=may (the default without relay-auth): TLS used, an unverifiable
    certificate logged as such, the mail goes."""
    port = free_port()
    relay = Relay(port, starttls=pki["wrongname"]).start()
    try:
        configure(sandbox, dns, port)
        err = send_and_run(sandbox)
        assert len(relay.messages) == 1, err
        assert relay.messages[0][1] is True
        assert "certificate not verified" in err
    finally:
        relay.stop()


def test_broken_handshake_retried_in_plaintext_when_opportunistic(sandbox, dns):
    srv = BrokenTLS().start()
    try:
        configure(sandbox, dns, srv.port)
        err = send_and_run(sandbox)
        assert len(srv.messages) == 1, err
        assert srv.connections == 2
        assert "trying once more without TLS" in err
        assert sandbox.queue_files() == []
    finally:
        srv.stop()


def test_broken_handshake_never_plaintext_when_required(sandbox, dns):
    srv = BrokenTLS().start()
    try:
        configure(sandbox, dns, srv.port, relay_tls="require")
        err = send_and_run(sandbox)
        assert srv.messages == [] and srv.connections == 1, err
        assert "4.7.5" in mailq(sandbox)
        assert not any(c.startswith("MAIL") for c in srv.commands)
    finally:
        srv.stop()


def test_cached_connection_keeps_tls_and_auth(sandbox, dns, pki):
    """Two messages in one queue run: the second reuses the connection, which
    is already past STARTTLS and AUTH (one AUTH, both messages over TLS)."""
    port = free_port()
    relay = Relay(port, starttls=pki["relay"], users=USERS).start()
    try:
        configure(sandbox, dns, port, relay_tls_ca=pki["ca"][0], relay_auth=auth_file(sandbox),
                  delivery_processes=1)
        for i in range(2):
            r = sandbox.sendmail("-i", "-odq", f"r{i}@far.test",
                                 message=f"Subject: m{i}\n\nbody {i}\n")
            assert r.returncode == 0
        r = sandbox.runq("-v")
        err = r.stderr.decode()
        assert len(relay.messages) == 2, err
        assert all(tls and authed for _, tls, authed in relay.messages)
        assert len(relay.auth) == 1, err
        assert "REUSE" in err and ", TLS)" in err
    finally:
        relay.stop()


def test_relay_tls_session_resumed(sandbox, dns, pki):
    """The relay hangs up after each message: the next connection of the same
    delivery process resumes the TLS session instead of a full handshake."""
    port = free_port()
    relay = Relay(port, starttls=pki["relay"], users=USERS)
    relay.handler.hangup = True
    relay.start()
    try:
        configure(sandbox, dns, port, relay_tls_ca=pki["ca"][0], relay_auth=auth_file(sandbox),
                  delivery_processes=1)
        for i in range(2):
            r = sandbox.sendmail("-i", "-odq", f"r{i}@far.test",
                                 message=f"Subject: m{i}\n\nbody {i}\n")
            assert r.returncode == 0
        err = sandbox.runq("-v").stderr.decode()
        assert len(relay.messages) == 2, err
        assert len(relay.auth) == 2, err  # a new connection: AUTH again
        tls = [l for l in err.splitlines() if l.startswith("runq: relay.test[") and " TLS " in l]
        assert len(tls) == 2, err
        assert not tls[0].endswith(", resumed") and tls[1].endswith("verified, resumed"), err
    finally:
        relay.stop()


@pytest.mark.parametrize("cert,ok", [("ip", True), ("relay", False)])
def test_address_literal_relay_verified_by_address(sandbox, pki, cert, ok):
    """relay-host=[127.0.0.1]:PORT with relay-tls=require: the certificate must
    list the address (no SNI is sent for an address)."""
    port = free_port()
    relay = Relay(port, starttls=pki[cert]).start()
    try:
        sandbox.write_config(relay_host=f"[127.0.0.1]:{port}", relay_tls="require",
                             relay_tls_ca=pki["ca"][0])
        err = send_and_run(sandbox)
        if ok:
            assert len(relay.messages) == 1 and relay.messages[0][1], err
            assert "certificate verified" in err
        else:
            deferred(sandbox, relay, err, "4.7.5", "IP address mismatch")
    finally:
        relay.stop()


def test_relay_auth_plaintext_when_allowed(sandbox, dns):
    """relay-tls=may and relay-auth-plaintext: AUTH goes without TLS to a relay
    that has none (the administrator said so); without the option it would not."""
    port = free_port()
    relay = Relay(port, users=USERS, auth_plaintext=True).start()
    try:
        configure(sandbox, dns, port, relay_tls="may", relay_auth=auth_file(sandbox))
        err = send_and_run(sandbox)
        deferred(sandbox, relay, err, "4.7.0", "without TLS")
        sandbox.write_config(relay_auth_plaintext=True)
        err = sandbox.runq("-v").stderr.decode()
        assert len(relay.messages) == 1, err
        assert relay.messages[0][1:] == (False, True)
        assert relay.auth == [("PLAIN", "box@provider.test", "s3cret:with colon")]
    finally:
        relay.stop()


def test_daemon_relays_smtp_mail_with_tls_and_auth(sandbox, dns, pki):
    """The daemon's path: a message accepted over SMTP goes out at once
    through a delivery worker (root, which reads relay-auth) and its
    unprivileged remote child."""
    import smtplib
    port = free_port()
    relay = Relay(port, starttls=pki["relay"], users=USERS).start()
    try:
        configure(sandbox, dns, port, relay_tls_ca=pki["ca"][0], relay_auth=auth_file(sandbox),
                  load=0)
        sandbox.start_daemon()
        with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=30) as s:
            s.sendmail("sender@mx.test.example", ["friend@far.test"],
                       b"Subject: from the daemon\r\n\r\nhi\r\n")
        deadline = time.time() + 20
        while not relay.messages and time.time() < deadline:
            time.sleep(0.1)
        assert len(relay.messages) == 1
        assert relay.messages[0][1:] == (True, True)
        assert received(relay)[0]["Subject"] == "from the daemon"
        sandbox.wait_queue_empty()
    finally:
        relay.stop()


def test_bad_relay_tls_value_refused(sandbox):
    sandbox.write_config(relay_tls="sometimes")
    r = sandbox.run("runq")
    assert r.returncode == 78, r.stderr
    assert b"relay-tls" in r.stderr and b"may, require or smtps" in r.stderr


# ---- opportunistic STARTTLS to MX hosts: port 25, in network namespaces ----

TAG = f"st{os.getpid() % 100000}"
HERE = os.path.dirname(os.path.abspath(__file__))
MXZONE = {
    "tls.test": [["MX", 10, "mx.tls.test"]],
    "mx.tls.test": [["A", "198.51.100.25"]],
    "plain.test": [["MX", 10, "mx.plain.test"]],
    "mx.plain.test": [["A", "198.51.100.26"]],
    "client.test": [["A", "198.51.100.1"]],
}


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check,
                          timeout=30)


def in_ns(node, argv, **kw):
    return subprocess.Popen(["ip", "netns", "exec", f"{TAG}-{node}", *argv], **kw)


@pytest.fixture(scope="module")
def mxnet(pki):
    """Two namespaces joined by a veth pair: cli (198.51.100.1, the sender)
    and srv (the DNS server .53, an MX offering STARTTLS .25, a plaintext MX
    .26, each an aiosmtpd on port 25 writing what it receives to a folder)."""
    if not shutil.which("ip"):
        pytest.skip("iproute2 (ip) is not installed")
    made, procs = [], []
    d = tempfile.mkdtemp(prefix="po-mxtls-", dir="/tmp")
    try:
        try:
            for n in ("cli", "srv"):
                ip("netns", "add", f"{TAG}-{n}")
                made.append(f"{TAG}-{n}")
            ip("link", "add", f"{TAG}c", "type", "veth", "peer", "name", f"{TAG}s")
            ip("link", "set", f"{TAG}c", "netns", f"{TAG}-cli")
            ip("link", "set", f"{TAG}s", "netns", f"{TAG}-srv")
        except subprocess.CalledProcessError as e:
            pytest.skip(f"cannot create network namespaces here: {e.stderr.strip()}")
        ip("-n", f"{TAG}-cli", "addr", "add", "198.51.100.1/24", "dev", f"{TAG}c")
        for a in ("25", "26", "53"):
            ip("-n", f"{TAG}-srv", "addr", "add", f"198.51.100.{a}/24", "dev", f"{TAG}s")
        for n, dev in (("cli", f"{TAG}c"), ("srv", f"{TAG}s")):
            ip("-n", f"{TAG}-{n}", "link", "set", dev, "up")
            ip("-n", f"{TAG}-{n}", "link", "set", "lo", "up")
        zf = os.path.join(d, "zone.json")
        with open(zf, "w") as f:
            json.dump(MXZONE, f)
        cert = make_cert(pki["dir"], pki["ca"], "mx", ["mx.tls.test"])
        servers = {
            "dns": [os.path.join(HERE, "dnsserver.py"), "198.51.100.53", "53", zf],
            "tls": [os.path.join(HERE, "tls_relay.py"), "198.51.100.25", "25",
                    os.path.join(d, "tls"), "--tls", *cert],
            "plain": [os.path.join(HERE, "tls_relay.py"), "198.51.100.26", "25",
                      os.path.join(d, "plain")],
        }
        for name, argv in servers.items():
            if name != "dns":
                os.makedirs(argv[3])
            p = in_ns("srv", ["/usr/bin/python3", *argv], stdin=subprocess.PIPE,
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append(p)
            line = p.stdout.readline()
            assert line.strip() == "ready", (name, p.stderr.read() if p.poll() is not None
                                             else line)
        yield d
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for n in made:
            ip("netns", "del", n, check=False)
        shutil.rmtree(d, ignore_errors=True)


def mx_send(sb, rcpt):
    sb.hostname = "client.test"
    sb.write_config(resolver="198.51.100.53", dns_timeout="2s", dns_tries=2,
                    connect_timeout="5s")
    msg = f"From: root\nTo: {rcpt}\nSubject: to {rcpt}\n\nover port 25\n"
    p = in_ns("cli", sb.cmd("sendmail", "-v", "-i", rcpt), stdin=subprocess.PIPE,
              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = p.communicate(msg, timeout=60)
    assert p.returncode == 0, out
    assert sb.queue_files() == [], out
    return out


def arrived(folder):
    """(how each message came: "tls"/"plain", the messages read with email)."""
    with open(os.path.join(folder, "log")) as f:
        how = f.read().split()
    msgs = []
    for name in sorted(n for n in os.listdir(folder) if n.endswith(".eml")):
        with open(os.path.join(folder, name), "rb") as f:
            msgs.append(email.message_from_binary_file(f))
    return how, msgs


def test_mx_opportunistic_starttls(sandbox, mxnet):
    out = mx_send(sandbox, "someone@tls.test")
    how, msgs = arrived(os.path.join(mxnet, "tls"))
    assert how == ["tls"], out
    assert msgs[0]["Subject"] == "to someone@tls.test"
    assert "STARTTLS" in out and "TLSv1.3" in out
    # opportunistic: the test CA is not in the system store, and that is fine
    assert "certificate not verified" in out and "status=sent" in out


def test_mx_without_starttls_gets_mail_in_plaintext(sandbox, mxnet):
    out = mx_send(sandbox, "someone@plain.test")
    how, msgs = arrived(os.path.join(mxnet, "plain"))
    assert how == ["plain"], out
    assert msgs[0]["Subject"] == "to someone@plain.test"
    assert "STARTTLS" not in out and "status=sent" in out
