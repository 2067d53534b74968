"""Packaged mail filters through postoffice's milter client: opendkim signs
what postoffice relays (the signature verified by python3-dkim against the
public key opendkim-genkey made, served by the test DNS server), and
pyspf-milter adds its Authentication-Results header from the test DNS server's SPF
record (run in private mount and network namespaces, so its resolver is
the test DNS server)."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import IS_ROOT
from dnsserver import ZoneServer
from smtpscript import ScriptServer

HERE = os.path.dirname(os.path.abspath(__file__))


def wait_path(path, proc, timeout=20):
    deadline = time.time() + timeout
    while not os.path.exists(path) and time.time() < deadline:
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    return os.path.exists(path)


def wait_messages(server, n, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline and len(server.messages) < n:
        time.sleep(0.05)
    return len(server.messages)


@pytest.mark.skipif(not shutil.which("opendkim") or not shutil.which("opendkim-genkey"),
                    reason="opendkim / opendkim-tools not installed")
def test_opendkim_signs_relayed_mail(sandbox):
    if not IS_ROOT:
        pytest.skip("relay-host is a root-only option; CI runs as root")
    dkim = pytest.importorskip("dkim")
    kdir = os.path.join(sandbox.dir, "dkim")
    os.makedirs(kdir)
    subprocess.run(["opendkim-genkey", "-D", kdir, "-d", "example.org", "-s", "test"],
                   check=True)
    txt = open(os.path.join(kdir, "test.txt")).read()
    pubkey = "".join(re.findall(r'"([^"]*)"', txt))
    assert pubkey.startswith("v=DKIM1")
    sock = os.path.join(sandbox.dir, "opendkim.sock")
    conf = os.path.join(kdir, "opendkim.conf")
    with open(conf, "w") as f:
        f.write(f"""Syslog no
Background no
Mode s
Domain example.org
Selector test
KeyFile {kdir}/test.private
Canonicalization relaxed/simple
Socket local:{sock}
UMask 000
PidFile {kdir}/opendkim.pid
InternalHosts 127.0.0.1
RequireSafeKeys no
""")
    od = subprocess.Popen(["opendkim", "-f", "-x", conf], stderr=subprocess.PIPE)
    srv = ScriptServer().start()
    zs = ZoneServer({"test._domainkey.example.org": [("TXT", pubkey)]}).start()
    try:
        assert wait_path(sock, od), od.stderr.read().decode() if od.poll() is not None else ""
        sandbox.write_config(load=0, filter="unix:" + sock,
                             relay_host=f"[127.0.0.1]:{srv.port}")
        sandbox.start_daemon()
        r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(sandbox.port),
                            "--from", "alice@example.org", "--to", "bob@remote.test",
                            "--header", "Subject: signed by opendkim",
                            "--body", "Hello,\nthis line is signed.\n"],
                           capture_output=True, timeout=60)
        assert r.returncode == 0, r.stdout.decode()
        assert wait_messages(srv, 1) == 1
        raw = srv.messages[0].replace(b"\r\n..", b"\r\n.")
        assert b"DKIM-Signature:" in raw
        # the key from the test DNS server, as a verifier on the Internet would
        import dns.resolver  # dnspython, as python3-dkim itself uses
        res = dns.resolver.Resolver(configure=False)
        res.nameservers = [zs.address]
        res.port = zs.port

        def dnsfunc(name, timeout=5):
            ans = res.resolve(name.decode().rstrip("."), "TXT")
            return b"".join(b"".join(r.strings) for r in ans)
        assert dkim.verify(raw, dnsfunc=dnsfunc), raw.decode(errors="replace")
        # a changed body no longer verifies: the check can fail
        assert not dkim.verify(raw.replace(b"signed.", b"forged."), dnsfunc=dnsfunc)
    finally:
        od.kill()  # first: nothing may leave the filter running
        od.wait()
        zs.stop()
        srv.stop()


SPF_RUNNER = r'''
import os, subprocess, sys, time
sys.path.insert(0, %(here)r)
from dnsserver import ZoneServer
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
subprocess.run(["mount", "--bind", %(resolv)r, "/etc/resolv.conf"], check=True)
ZoneServer(%(zone)r, port=53).start()
sys.exit(subprocess.run(["pyspf-milter", %(conf)r]).returncode)  # the DNS server lives here
'''


@pytest.mark.skipif(not shutil.which("pyspf-milter") or not shutil.which("unshare"),
                    reason="pyspf-milter or unshare not installed")
def test_pyspf_milter_adds_received_spf(sandbox, accounts):
    if not IS_ROOT:
        pytest.skip("needs root for private mount and network namespaces")
    d = os.path.join(sandbox.dir, "spf")
    os.makedirs(d)
    os.chmod(d, 0o777)
    sock = os.path.join(d, "spf.sock")
    resolv = os.path.join(d, "resolv.conf")
    with open(resolv, "w") as f:
        f.write("nameserver 127.0.0.1\n")
    conf = os.path.join(d, "pyspf-milter.conf")
    with open(conf, "w") as f:
        f.write(f"""debugLevel = 1
TestOnly = 1
HELO_reject = Fail
Mail_From_reject = Fail
PermError_reject = False
TempError_Defer = False
skip_addresses = 127.0.0.0/8
Socket = {sock}
PidFile = {d}/pyspf-milter.pid
UserID = {accounts['spool']}
InternalHosts = 127.0.0.1
""")
    zone = {"spf.example": [("TXT", "v=spf1 ip4:203.0.113.0/24 -all"), ("A", "203.0.113.1")],
            "client.spf.example": [("TXT", "v=spf1 ip4:203.0.113.0/24 -all"),
                                   ("A", "203.0.113.7")],
            "7.113.0.203.in-addr.arpa": [("PTR", "client.spf.example")],
            "other.spf.example": [("A", "198.51.100.7")],
            "7.100.51.198.in-addr.arpa": [("PTR", "other.spf.example")]}
    runner = SPF_RUNNER % {"here": HERE, "resolv": resolv, "zone": zone, "conf": conf}
    p = subprocess.Popen(["unshare", "-m", "-n", "--propagation", "private",
                          sys.executable, "-c", runner], stderr=subprocess.PIPE,
                         start_new_session=True)
    zs = ZoneServer(zone).start()  # postoffice's own lookups, offline too
    try:
        if not wait_path(sock, p):
            err = p.stderr.read().decode() if p.poll() is not None else "no socket"
            pytest.fail("pyspf-milter did not start: " + err)
        sandbox.write_config(load=0, filter="unix:" + sock, resolver=zs.resolver)
        u1 = accounts["u1"]
        def session(sender, ip):
            script = (f"EHLO client.spf.example\r\nMAIL FROM:<{sender}>\r\n"
                      f"RCPT TO:<{u1}@mx.test.example>\r\nDATA\r\nSubject: spf\r\n\r\nhi\r\n"
                      ".\r\nQUIT\r\n")
            return sandbox.run("postoffice", "-bs", "-R", ip, input=script).stdout.decode()
        out = session("alice@spf.example", "203.0.113.7")
        assert "250 2.0.0 message accepted" in out, out
        # a client the record does not allow: the filter's own reply at MAIL
        out = session("bob@spf.example", "198.51.100.7")
        assert re.search(r"^550 5\.7\.23 .*SPF fail", out, re.M), out
        sandbox.runq()
        msgs = sandbox.wait_for_mail(u1, 1)
        assert len(msgs) == 1
        # pyspf-milter's default header is Authentication-Results (RFC 8601)
        ar = msgs[0]["Authentication-Results"] or ""
        assert "spf=pass" in ar and "client-ip=203.0.113.7" in ar, msgs[0].as_string()
    finally:
        os.killpg(p.pid, signal.SIGKILL)  # first: the runner and pyspf-milter
        p.wait()
        zs.stop()
