"""Greylisting in the daemon, for a client on another host: two network
namespaces joined by one veth pair (root; the test builds and removes them).

    srv  198.51.100.10  postoffice -bD, port 25 and msp=587
    cli  198.51.100.1   python3 smtplib

On port 25 the client's first attempt waits (451 4.7.1 at RCPT); on the
submission port, where it must authenticate first, it is not greylisted.  A database the sessions cannot use lets
mail through and is logged once by the whole daemon, not once per session, and
its recovery once."""
import os
import pwd
import shutil
import subprocess
import time

import pytest

from conftest import Sandbox

TAG = f"pg{os.getpid() % 100000}"
SRV, CLI = "198.51.100.10", "198.51.100.1"

CLIENT = r"""
import smtplib, sys
port, sender, rcpt = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = smtplib.SMTP(sys.argv[4], port, timeout=20)
s.ehlo("client.example")
if len(sys.argv) > 5:
    s.login(sys.argv[5], sys.argv[6])
s.mail(sender)
code, text = s.rcpt(rcpt)
print(code, text.decode())
s.quit()
"""


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check,
                          timeout=30)


def ns(node):
    return f"{TAG}-{node}"


@pytest.fixture(scope="module")
def net():
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CI runs as root)")
    if not shutil.which("ip"):
        pytest.skip("iproute2 (ip) is not installed")
    made = []
    try:
        try:
            for node, addr in (("srv", SRV), ("cli", CLI)):
                ip("netns", "add", ns(node))
                made.append(ns(node))
            ip("link", "add", f"{TAG}s", "type", "veth", "peer", "name", f"{TAG}c")
            for node, addr, dev in (("srv", SRV, f"{TAG}s"), ("cli", CLI, f"{TAG}c")):
                ip("link", "set", dev, "netns", ns(node))
                ip("-n", ns(node), "addr", "add", f"{addr}/24", "dev", dev)
                ip("-n", ns(node), "link", "set", dev, "up")
                ip("-n", ns(node), "link", "set", "lo", "up")
        except subprocess.CalledProcessError as e:
            pytest.skip(f"cannot create network namespaces here: {e.stderr.strip()}")
        yield
    finally:
        for n in made:
            ip("netns", "del", n, check=False)


@pytest.fixture
def srv(net, accounts):
    sb = Sandbox(accounts)
    sb.db = os.path.join(sb.dir, "smtpauth")
    # no DNS server: the client has no name, and the sender's domain is not
    # checked; the resolver is our own address, where nothing answers
    sb.write_config(listen=f"{SRV}:25", msp=587, load=0, verify_from=0,
                    resolver=f"{SRV}:53", dns_timeout=1, dns_tries=1,
                    greylist=True, greylist_db=sb.db, delay=100, auth_plaintext=True)
    assert sb.run("newaliases").returncode == 0
    # a virtual user to authenticate as on the submission port
    vdir = os.path.join(sb.dir, "virtual")
    os.makedirs(os.path.join(vdir, "auth.example"), exist_ok=True)
    with open(os.path.join(vdir, "domains.cf"), "w") as f:
        f.write("admin:auth.example:1\n")
    hashed = subprocess.run(["openssl", "passwd", "-6", "s3cret"], capture_output=True,
                            text=True, check=True).stdout.strip()
    with open(os.path.join(vdir, "auth.example", "passwd"), "w") as f:
        f.write(f"joe:{hashed}\n")
    sb.log = os.path.join(sb.dir, "daemon.log")
    with open(sb.log, "ab") as log:
        sb.procs.append(subprocess.Popen(["ip", "netns", "exec", ns("srv"),
                                          *sb.cmd("postoffice", "-bD")],
                                         stdout=log, stderr=subprocess.STDOUT))
    deadline = time.time() + 15
    while not os.path.exists(sb.db + ".db") and time.time() < deadline:
        time.sleep(0.05)
    yield sb
    sb.close()


def rcpt(sb, port, sender="a@client.example"):
    to = "%s@%s" % (sb.acc["u1"], sb.hostname)
    login = ["joe@auth.example", "s3cret"] if port == 587 else []
    r = None
    for _ in range(100):  # the daemon may still be binding
        r = subprocess.run(["ip", "netns", "exec", ns("cli"), "/usr/bin/python3", "-c",
                            CLIENT, str(port), sender, to, SRV, *login],
                           capture_output=True, text=True, timeout=60)
        if r.returncode == 0:
            code, text = r.stdout.split(" ", 1)
            return int(code), text
        time.sleep(0.1)
    raise AssertionError(r.stderr)


def log_lines(sb, what):
    with open(sb.log, errors="replace") as f:
        return [l for l in f if what in l]


def test_port_25_greylisted_submission_not(srv):
    code, text = rcpt(srv, 25)
    assert code == 451 and text.startswith("4.7.1 greylisted"), text
    # no reverse DNS answer here (a lookup that fails is no proof): delay= x 1
    assert "in 100 seconds" in text or "in 99 seconds" in text, text
    assert rcpt(srv, 587)[0] == 250
    assert rcpt(srv, 587, sender="new@client.example")[0] == 250
    r = subprocess.run([os.path.join(os.path.dirname(__file__), "..", "..", "authexpire"),
                        "-C", srv.cf, "-l"], capture_output=True, text=True)
    assert r.stdout.startswith("a@[198.51.100.1]\t") and len(r.stdout.splitlines()) == 1, r


def test_broken_database_logged_once(srv):
    assert rcpt(srv, 25)[0] == 451
    os.chown(srv.db + ".db", 0, 0)  # the sessions (user=) cannot open it now
    for i in range(3):
        assert rcpt(srv, 25, sender="x%d@client.example" % i)[0] == 250
    time.sleep(0.3)
    assert len(log_lines(srv, "mail is accepted without greylisting")) == 1, \
        open(srv.log).read()[-2000:]
    pw = pwd.getpwnam(srv.acc["spool"])
    os.chown(srv.db + ".db", pw.pw_uid, pw.pw_gid)
    assert rcpt(srv, 25, sender="y@client.example")[0] == 451
    assert rcpt(srv, 25, sender="z@client.example")[0] == 451
    time.sleep(0.3)
    assert len(log_lines(srv, "works again")) == 1, open(srv.log).read()[-2000:]
