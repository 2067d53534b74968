"""A primary and a backup MX, both real postoffice daemons, on port 25 of their
own network namespaces (root; the test builds the network and removes it).

Five namespaces hang off a bridge (in the "sw" namespace):

    dns  198.51.100.53                 tests/e2e/dnsserver.py (dnslib)
    pri  198.51.100.10  2001:db8::10   postoffice -bD, the primary MX
    bak  198.51.100.20  2001:db8::20   postoffice -bD with mxpool, the backup MX
    cli  198.51.100.1   2001:db8::1    the sender: postoffice's sendmail -v

example.test has MX 10 primary, MX 20 backup (IPv4); v6.test the same with
AAAA-only hosts.  The primary down, the sender's mail goes to the backup, which
accepts it as a listed MX of the domain (the sender may not relay through it)
and keeps it: it never delivers it to itself, never bounces it, and defers
while the only better MX is down.  The primary back, the backup's next queue
run (runq in its namespace) hands the mail over and the primary delivers it
into the local mailbox: exactly one copy (python's mailbox module), and both
queues end up empty.  Every daemon has its own queue, spool, aliases and
configuration in a private sandbox directory.
"""
import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import Sandbox

HERE = os.path.dirname(os.path.abspath(__file__))
TAG = f"pm{os.getpid() % 100000}"
V4 = {"dns": "198.51.100.53", "pri": "198.51.100.10", "bak": "198.51.100.20",
      "cli": "198.51.100.1"}
V6 = {"dns": "2001:db8::53", "pri": "2001:db8::10", "bak": "2001:db8::20",
      "cli": "2001:db8::1"}
ZONE = {
    "example.test": [["MX", 10, "primary.example.test"], ["MX", 20, "backup.example.test"]],
    "primary.example.test": [["A", V4["pri"]]],
    "backup.example.test": [["A", V4["bak"]]],
    "v6.test": [["MX", 10, "primary6.v6.test"], ["MX", 20, "backup6.v6.test"]],
    "primary6.v6.test": [["AAAA", V6["pri"]]],
    "backup6.v6.test": [["AAAA", V6["bak"]]],
    "client.test": [["A", V4["cli"]], ["AAAA", V6["cli"]]],
}
HOSTNAMES = {"pri": "primary.example.test", "bak": "backup.example.test",
             "cli": "client.test"}


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check,
                          timeout=30)


def ns(node):
    return f"{TAG}-{node}"


def in_ns(node, argv, **kw):
    return subprocess.run(["ip", "netns", "exec", ns(node), *argv], capture_output=True,
                          text=True, **kw)


def build_network(made):
    """The bridge and one veth per node, addresses without duplicate address
    detection (so IPv6 works at once).  Names of the namespaces made go to made."""
    ip("netns", "add", ns("sw"))
    made.append(ns("sw"))
    ip("-n", ns("sw"), "link", "add", "br0", "type", "bridge")
    ip("-n", ns("sw"), "link", "set", "br0", "up")
    for node in V4:
        ip("netns", "add", ns(node))
        made.append(ns(node))
        a, b = f"{TAG}{node}", f"{TAG}{node}b"
        ip("link", "add", a, "type", "veth", "peer", "name", b)
        ip("link", "set", a, "netns", ns(node))
        ip("link", "set", b, "netns", ns("sw"))
        ip("-n", ns("sw"), "link", "set", b, "master", "br0", "up")
        ip("-n", ns(node), "addr", "add", f"{V4[node]}/24", "dev", a)
        ip("-n", ns(node), "-6", "addr", "add", f"{V6[node]}/64", "dev", a, "nodad")
        ip("-n", ns(node), "link", "set", a, "up")
        ip("-n", ns(node), "link", "set", "lo", "up")


def bridge_port(node, state):
    """Cut (down) or restore (up) node's cable at the bridge: the node keeps its
    addresses, nothing reaches it."""
    ip("-n", ns("sw"), "link", "set", f"{TAG}{node}b", state)


class Node:
    """A postoffice sandbox that runs in a namespace."""

    def __init__(self, name, accounts, **opts):
        self.name = name
        self.daemon = None
        self.log = None
        self.sb = Sandbox(accounts)
        try:
            self.sb.hostname = HOSTNAMES[name]
            listen = f"{V4[name]}:25,[{V6[name]}]:25"
            self.sb.write_config(resolver=V4["dns"], listen=listen, load=0,
                                 connect_timeout="5s", dns_timeout="2s", dns_tries=2,
                                 **opts)
            r = self.sb.run("newaliases")
            assert r.returncode == 0, r.stderr
        except BaseException:
            self.sb.close()
            raise

    def run(self, personality, *args, input=None):
        r = in_ns(self.name, self.sb.cmd(personality, *args), input=input, timeout=60)
        return r

    def start(self):
        """postoffice -bD on port 25 of the node's addresses; returns once a
        client in the sender's namespace can connect."""
        self.log = open(os.path.join(self.sb.dir, "daemon.log"), "ab")
        self.daemon = subprocess.Popen(["ip", "netns", "exec", ns(self.name),
                                        *self.sb.cmd("postoffice", "-bD")],
                                       stdout=self.log, stderr=subprocess.STDOUT)
        probe = ("import socket, sys, time\n"
                 "end = time.time() + 15\n"
                 "while time.time() < end:\n"
                 "    try:\n"
                 "        socket.create_connection((sys.argv[1], 25), timeout=2).close()\n"
                 "        sys.exit(0)\n"
                 "    except OSError:\n"
                 "        time.sleep(0.05)\n"
                 "sys.exit(1)\n")
        r = in_ns("cli", ["/usr/bin/python3", "-c", probe, V4[self.name]], timeout=30)
        assert r.returncode == 0 and self.daemon.poll() is None, self.daemon_log()

    def stop(self):
        if self.daemon and self.daemon.poll() is None:
            self.daemon.terminate()
            try:
                self.daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait()
        self.daemon = None
        if self.log:
            self.log.close()
            self.log = None

    def daemon_log(self):
        p = os.path.join(self.sb.dir, "daemon.log")
        return open(p, errors="replace").read()[-3000:] if os.path.exists(p) else ""

    def control_files(self):
        """{qid: control file text} of the messages in the queue."""
        out = {}
        for qid, (_, ctl) in self.sb.queued().items():
            out[qid] = ctl
        return out

    def close(self):
        self.stop()
        self.sb.close()


def rcpt_state(cf):
    """(state, last status) of recipient 0 of a control file, status records applied."""
    state = status = None
    for line in cf.splitlines():
        if line.startswith("R0 "):
            state = line.split(" ")[1]
        elif line.startswith("S0 "):
            status = line[3:]
        elif line.startswith("D0 "):
            f = line.split(" ", 3)
            state, status = f[1], (f[3] if len(f) > 3 else status)
    return state, status


@pytest.fixture(scope="module")
def mxnet(accounts, tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CI runs as root)")
    if not shutil.which("ip"):
        pytest.skip("iproute2 (ip) is not installed")
    made, nodes, procs = [], {}, []
    try:
        try:
            build_network(made)
        except subprocess.CalledProcessError as e:
            pytest.skip(f"cannot create network namespaces here: {e.stderr.strip()}")
        d = tmp_path_factory.mktemp("mxnet")
        zf = d / "zone.json"
        zf.write_text(json.dumps(ZONE))
        dns = subprocess.Popen(["ip", "netns", "exec", ns("dns"), "/usr/bin/python3",
                                os.path.join(HERE, "dnsserver.py"), V4["dns"], "53",
                                str(zf)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(dns)
        line = dns.stdout.readline()
        assert line.strip() == "ready", dns.stderr.read() if dns.poll() is not None else line
        # the primary and the sender know the users; the backup only relays
        nodes["pri"] = Node("pri", accounts)
        nodes["pri"].sb.set_aliases("postmaster: %s\nMAILER-DAEMON: postmaster\n"
                                    "user: %s\nuser6: %s\n"
                                    % (accounts["u1"], accounts["u1"], accounts["u2"]))
        nodes["bak"] = Node("bak", accounts, mxpool=True)
        nodes["cli"] = Node("cli", accounts)
        nodes["bak"].start()
        yield nodes
    finally:
        for n in nodes.values():
            n.close()
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for n in made:
            ip("netns", "del", n, check=False)


def send(cli, rcpt, msgid):
    """The sender's sendmail -v: queued and delivered in the foreground (the
    SMTP dialogue on stdout); its queue must be empty afterwards."""
    msg = (f"From: sender@client.test\nTo: {rcpt}\nSubject: via the backup MX\n"
           f"Message-ID: <{msgid}>\n\nhello over port 25\n.dots stay\n")
    r = cli.run("sendmail", "-v", "-f", "sender@client.test", rcpt, input=msg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert cli.control_files() == {}, r.stdout + r.stderr
    return r.stdout + r.stderr


def scenario(mxnet, rcpt, mbox_user, primary_down, primary_up, pri_addr, bak_addr):
    pri, bak, cli = mxnet["pri"], mxnet["bak"], mxnet["cli"]
    msgid = f"{rcpt.replace('@', '.')}.{time.time_ns()}@client.test"
    before = bak.control_files()
    assert before == {}, before

    # 1. primary down: the sender tries it first, then hands the mail to the
    #    backup, which accepts it for the better MX and keeps it
    primary_down()
    out = send(cli, rcpt, msgid)
    assert f"[{pri_addr}]" in out and f"[{bak_addr}]" in out, out
    held = bak.control_files()
    assert len(held) == 1, (out, bak.daemon_log())
    [(qid, cf)] = held.items()
    assert "\nFsender@client.test\n" in cf and rcpt in cf, cf
    assert pri.sb.mbox(mbox_user) == []

    # 2. the backup's queue run: only the primary is better than the backup,
    #    and it is down, so the mail stays (deferred: never to itself, no bounce)
    r = bak.run("runq", "-v")
    assert r.returncode == 0, r.stdout + r.stderr
    held = bak.control_files()
    assert list(held) == [qid], (r.stdout, r.stderr, held)
    state, status = rcpt_state(held[qid])
    assert state == "P" and status and status.startswith("4."), (held[qid], r.stdout, r.stderr)
    assert f"[{bak_addr}]" not in r.stdout + r.stderr
    assert os.listdir(bak.sb.spool) == [] and pri.sb.mbox(mbox_user) == []

    # 3. primary back: the backup's next queue run hands the mail over; the
    #    primary delivers it into the mailbox, once
    primary_up()
    r = bak.run("runq", "-v")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"[{pri_addr}]" in r.stdout + r.stderr, r.stdout + r.stderr
    assert bak.control_files() == {}, (r.stdout, r.stderr, bak.control_files())
    msgs = pri.sb.wait_for_mail(mbox_user, 1)
    assert pri.sb.wait_queue_empty(), pri.control_files()
    assert [m["Message-ID"] for m in msgs] == [f"<{msgid}>"], pri.daemon_log()
    assert msgs[0].get_payload() == "hello over port 25\n.dots stay\n"
    received = msgs[0].get_all("Received")
    assert any(HOSTNAMES["bak"] in h for h in received), received

    # 4. nothing left to hand over twice
    r = bak.run("runq")
    assert r.returncode == 0, r.stderr
    assert len(pri.sb.mbox(mbox_user)) == 1


def test_backup_mx_queues_while_primary_is_down(mxnet, accounts):
    """IPv4: the primary's daemon is stopped, then started again."""
    pri = mxnet["pri"]
    try:
        scenario(mxnet, "user@example.test", accounts["u1"],
                 primary_down=pri.stop, primary_up=pri.start,
                 pri_addr=V4["pri"], bak_addr=V4["bak"])
    finally:
        pri.stop()


def test_backup_mx_ipv6_only(mxnet, accounts):
    """IPv6-only MX hosts (AAAA): the primary runs but its cable is cut at the
    bridge, then plugged in again."""
    pri = mxnet["pri"]
    pri.start()
    try:
        scenario(mxnet, "user6@v6.test", accounts["u2"],
                 primary_down=lambda: bridge_port("pri", "down"),
                 primary_up=lambda: bridge_port("pri", "up"),
                 pri_addr=V6["pri"], bak_addr=V6["bak"])
    finally:
        bridge_port("pri", "up")
        pri.stop()
