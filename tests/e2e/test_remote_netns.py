"""Real MX routing on port 25, in network namespaces made by the test (root).

Four namespaces hang off a bridge: a DNS server (198.51.100.53), the primary MX
(.10), the backup MX (.20) and the sending client (.1).  dest.test has
MX 10 primary, MX 20 backup.  With the primary down the client's mail goes to
the backup; the backup, delivering onward, never sends to itself (its own MX
preference and worse are skipped), so it defers while the primary is down and
hands the mail over once it is back.  Nothing lost, nothing duplicated.

The senders are tests/bin/po-remote (smtpc_deliver, what remote_deliver runs);
the receivers store what they get (tests/e2e/smtpsink.py, aiosmtpd).
"""
import json
import os
import shutil
import subprocess
import time

import pytest

from remote_util import DRIVER, need_driver

HERE = os.path.dirname(os.path.abspath(__file__))
TAG = f"po{os.getpid() % 100000}"
NODES = {"dns": "198.51.100.53", "pri": "198.51.100.10", "bak": "198.51.100.20",
         "cli": "198.51.100.1"}
ZONE = {
    "dest.test": [["MX", 10, "primary.dest.test"], ["MX", 20, "backup.dest.test"]],
    "primary.dest.test": [["A", NODES["pri"]]],
    "backup.dest.test": [["A", NODES["bak"]]],
}


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def ns(node):
    return f"{TAG}-{node}"


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CI runs as root)")
    if not shutil.which("ip"):
        pytest.skip("iproute2 (ip) is not installed")
    need_driver()
    made = []
    try:
        r = ip("netns", "add", ns("sw"), check=False)
        if r.returncode != 0:
            pytest.skip(f"cannot create network namespaces here: {r.stderr.strip()}")
        made.append(ns("sw"))
        ip("-n", ns("sw"), "link", "add", "br0", "type", "bridge")
        ip("-n", ns("sw"), "link", "set", "br0", "up")
        for node, addr in NODES.items():
            ip("netns", "add", ns(node))
            made.append(ns(node))
            a, b = f"{TAG}{node}", f"{TAG}{node}b"
            ip("link", "add", a, "type", "veth", "peer", "name", b)
            ip("link", "set", a, "netns", ns(node))
            ip("link", "set", b, "netns", ns("sw"))
            ip("-n", ns("sw"), "link", "set", b, "master", "br0", "up")
            ip("-n", ns(node), "addr", "add", f"{addr}/24", "dev", a)
            ip("-n", ns(node), "link", "set", a, "up")
            ip("-n", ns(node), "link", "set", "lo", "up")
    except subprocess.CalledProcessError as e:
        for n in made:
            ip("netns", "del", n, check=False)
        pytest.skip(f"cannot build the test network: {e.stderr.strip()}")
    d = tmp_path_factory.mktemp("netns")
    procs = []
    yield {"dir": d, "procs": procs}
    for p in procs:
        p.terminate()
        p.wait(timeout=10)
    for n in made:
        ip("netns", "del", n, check=False)


def start(net, node, *argv):
    p = subprocess.Popen(["ip", "netns", "exec", ns(node), "/usr/bin/python3", *argv],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    net["procs"].append(p)
    line = p.stdout.readline()
    assert line.strip() == "ready", p.stderr.read() if p.poll() is not None else line
    return p


def sink(net, node):
    out = net["dir"] / node
    out.mkdir(exist_ok=True)
    start(net, node, os.path.join(HERE, "smtpsink.py"), NODES[node], "25", str(out))
    return out


def stored(d):
    return sorted(p for p in d.iterdir() if p.suffix == ".eml")


def deliver(node, msgfile, *rcpts, hostname):
    r = subprocess.run(["ip", "netns", "exec", ns(node), DRIVER, "-o",
                        f"resolver={NODES['dns']}", "-o", f"hostname={hostname}",
                        "-o", "connect-timeout=5", "-o", "dns-tries=2",
                        "send", "s@client.test", str(msgfile), *rcpts],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return {l.split("\t")[0]: l.split("\t")[1:] for l in r.stdout.splitlines()}, r.stderr


def test_primary_down_backup_queues_then_hands_over(net):
    zf = net["dir"] / "zone.json"
    zf.write_text(json.dumps(ZONE))
    start(net, "dns", os.path.join(HERE, "dnsserver.py"), NODES["dns"], "53", str(zf))
    bak = sink(net, "bak")

    msg = net["dir"] / "msg"
    msg.write_bytes(b"Subject: netns\nMessage-ID: <1@client.test>\n\nhello over port 25\n")

    # 1. primary down: the client's mail lands on the backup
    res, err = deliver("cli", msg, "u@dest.test", hostname="client.test")
    assert res["u@dest.test"][0] == "sent", err
    assert res["u@dest.test"][2] == "backup.dest.test"
    assert "primary.dest.test[198.51.100.10]:25" in err  # tried first, refused
    [held] = stored(bak)

    # 2. the backup delivers onward: only the primary is better than itself,
    #    and it is down, so the mail stays with the backup (deferred)
    first, _, text = held.read_bytes().partition(b"\n")
    queued = net["dir"] / "held"
    queued.write_bytes(text.replace(b"\r\n", b"\n"))
    rcpts = first.decode().split(" ", 1)[1].split(",")
    res, err = deliver("bak", queued, *rcpts, hostname="backup.dest.test")
    assert res["u@dest.test"][0] == "deferred", err
    assert res["u@dest.test"][1].startswith("4.4.1 ")
    assert "backup.dest.test[" not in err       # never to itself
    assert len(stored(bak)) == 1

    # 3. primary back: the backup's next run hands the mail over, once
    pri = sink(net, "pri")
    res, err = deliver("bak", queued, *rcpts, hostname="backup.dest.test")
    assert res["u@dest.test"][0] == "sent", err
    assert res["u@dest.test"][2] == "primary.dest.test"
    got = stored(pri)
    assert len(got) == 1
    assert got[0].read_bytes().split(b"\n", 1)[1] == msg.read_bytes().replace(b"\n", b"\r\n")
    assert len(stored(bak)) == 1

    # 4. and new mail from the client now goes straight to the primary
    res, err = deliver("cli", msg, "v@dest.test", hostname="client.test")
    assert res["v@dest.test"][2] == "primary.dest.test"
    assert len(stored(pri)) == 2 and len(stored(bak)) == 1
