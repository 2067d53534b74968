"""Crash battery: the daemon under SMTP load, kill -9 of a random process of its
tree (master, spare, session child, delivery worker, mailbox-writing child) at
random moments, restart, go on, drain the queue; then every message that got
its 250 is in the mailbox complete, nothing is truncated, and duplicates stay
within one mailbox batch (8 messages, HACKING.md) per killed delivery process.

CRASH_TRIALS=N (environment) sets the number of kills (default 5: each kind
of process once, in random order; about 10 s).  CRASH_SEED=N repeats a run."""
import hashlib
import mailbox
import os
import random
import signal
import smtplib
import socket
import subprocess
import threading
import time

import pytest

from conftest import IS_ROOT, free_port
from procs import children, comm

TRIALS = int(os.environ.get("CRASH_TRIALS", "5"))
CLIENTS = 3
BATCH = 8  # runq's mailbox group (HACKING.md): what one killed writer may repeat


def has_net_socket(pid):
    """Session children hold a TCP socket; delivery workers only unix ones."""
    with open("/proc/net/unix") as f:
        next(f)
        unix = {"socket:[%s]" % l.split()[6] for l in f if len(l.split()) > 6}
    try:
        links = [os.readlink("/proc/%d/fd/%s" % (pid, fd)) for fd in os.listdir("/proc/%d/fd" % pid)]
    except OSError:
        return False
    return any(l.startswith("socket:") and l not in unix for l in links)


def writers(master):
    """Grandchildren of the master: the children a delivery worker forks to
    write a mailbox as its owner (sessions and the spare fork nothing)."""
    return [g for k in children(master) for g in children(k)]


def tree(master):
    """{kind: [pids]} of the daemon's processes right now."""
    kinds = {"master": [master], "spare": [], "session": [], "worker": [], "writer": []}
    for k in children(master):
        if comm(k) == "po-spare":
            kinds["spare"].append(k)
        elif has_net_socket(k):
            kinds["session"].append(k)
        else:
            kinds["worker"].append(k)
            kinds["writer"].extend(children(k))  # local delivery children
    return kinds


def body_for(seq, rng):
    """A body with the lines that need care: "From " (mbox escaping), dots
    (SMTP stuffing), long and empty lines."""
    lines = []
    for i in range(rng.randint(1, 60)):
        r = rng.random()
        if r < 0.1:
            lines.append("From line %d of %d" % (i, seq))
        elif r < 0.2:
            lines.append("." * rng.randint(1, 3))
        elif r < 0.25:
            lines.append("")
        else:
            lines.append("%d-%d " % (seq, i) + "x" * rng.randint(0, 900))
    return "\n".join(lines) + "\nend %d\n" % seq


def delivered_form(body):
    """The body as it reads back from the mbox (escape-from: ">From ")."""
    return "\n".join(">" + l if l.startswith("From ") else l for l in body.split("\n"))


def digest(text):
    return hashlib.sha256(text.rstrip("\n").encode()).hexdigest()


class Daemon:
    def __init__(self, sandbox):
        self.sb = sandbox
        self.port = free_port()
        self.p = None
        self.log = open(os.path.join(sandbox.dir, "daemon.log"), "ab")

    def start(self):
        deadline = time.time() + 30
        while time.time() < deadline:
            p = subprocess.Popen(self.sb.cmd("postoffice", "-bD"),
                                 stdout=self.log, stderr=self.log)
            self.sb.procs.append(p)
            while time.time() < deadline and p.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    self.p = p
                    return
                except OSError:
                    time.sleep(0.05)
            time.sleep(0.2)  # the old tree may still hold the port: try again
        raise AssertionError("daemon did not restart: see daemon.log")


class Client(threading.Thread):
    def __init__(self, n, port_of, rcpt, stop, seed):
        super().__init__(daemon=True)
        self.n, self.port_of, self.rcpt, self.stop = n, port_of, rcpt, stop
        self.rng = random.Random(seed)
        self.accepted = {}   # seq -> digest of the delivered body
        self.unsure = {}     # sent, no 250 seen (connection cut): may or may not arrive
        self.errors = []

    def run(self):
        i = 0
        while not self.stop.is_set():
            try:
                with smtplib.SMTP("127.0.0.1", self.port_of(), timeout=30) as s:
                    for _ in range(self.rng.randint(1, 5)):
                        if self.stop.is_set():
                            break
                        seq = self.n * 1000000 + i
                        i += 1
                        body = body_for(seq, self.rng)
                        want = delivered_form(body).rstrip("\n")
                        msg = ("Subject: crash %d\nX-Seq: %d\nX-Digest: %s\nX-Length: %d\n\n%s"
                               % (seq, seq, digest(want), len(want), body))
                        self.unsure[seq] = digest(want)
                        s.sendmail("load@client.example", [self.rcpt], msg)
                        self.accepted[seq] = self.unsure.pop(seq)
            except (OSError, smtplib.SMTPException):
                time.sleep(0.05)  # daemon or session killed: reconnect


def read_mbox(path):
    """[(seq or None, state)] for every message in the mbox; state is "ok"
    (the body matches its digest), "fragment" (headers cut, or the body
    shorter than sent: a truncated write) or "corrupt" (anything else)."""
    out = []
    box = mailbox.mbox(path, create=False)
    try:
        for m in box:
            seq, want, length = m.get("X-Seq"), m.get("X-Digest"), m.get("X-Length")
            payload = m.get_payload()
            if seq is None or want is None or length is None or not isinstance(payload, str):
                state = "fragment"
            elif digest(payload) == want:
                state = "ok"
            elif len(payload.rstrip("\n")) < int(length):
                state = "fragment"
            else:
                state = "corrupt"
            out.append((int(seq) if seq and seq.isdigit() else None, state))
    finally:
        box.close()
    return out


def leftovers(cf):
    """pids of processes running with our configuration file."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    if cf.encode() in f.read():
                        out.append(int(d))
            except OSError:
                pass
    return out


def wait_gone(cf, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not leftovers(cf):
            return True
        time.sleep(0.1)
    return False


def report_kills(kills):
    return ", ".join("%s %d" % kv for kv in kills.items())


def test_crash_battery(sandbox, accounts):
    if not IS_ROOT:
        pytest.skip("needs root: mailbox-writing children run as the mailbox owner")
    sandbox.write_config(load=0, delivery_processes=2, escape_from=True)
    d = Daemon(sandbox)
    sandbox.write_config(listen="127.0.0.1:%d" % d.port)
    d.start()
    rcpt = "%s@%s" % (accounts["u1"], sandbox.hostname)
    rng = random.Random(os.environ.get("CRASH_SEED") or time.time_ns())
    stop = threading.Event()
    clients = [Client(n + 1, lambda: d.port, rcpt, stop, rng.random()) for n in range(CLIENTS)]
    for c in clients:
        c.start()

    kills = {"master": 0, "spare": 0, "session": 0, "worker": 0, "writer": 0}
    order = []
    while len(order) < TRIALS:  # every kind once in each round of five, shuffled
        order += rng.sample(list(kills), len(kills))
    for trial, kind in enumerate(order[:TRIALS]):
        time.sleep(rng.uniform(0.3, 1.5))
        victims = []
        deadline = time.time() + 3  # writers and sessions come and go: wait for one
        while not victims and time.time() < deadline:
            victims = writers(d.p.pid) if kind == "writer" else tree(d.p.pid)[kind]
            if not victims:
                time.sleep(0.002 if kind == "writer" else 0.01)
        if not victims:
            kind, victims = "master", [d.p.pid]
        victim = rng.choice(victims)
        try:
            os.kill(victim, signal.SIGKILL)
            kills[kind] += 1
            print("trial %d: killed %s %d" % (trial, kind, victim))
        except ProcessLookupError:
            continue
        if kind == "master":
            d.p.wait()
            d.start()
    time.sleep(0.5)
    stop.set()
    for c in clients:
        c.join(60)
    assert d.p.poll() is None, "the daemon died without being killed: see daemon.log"

    # drain: queue runs until every message is delivered
    deadline = time.time() + 120
    while sandbox.queue_files() and time.time() < deadline:
        try:
            r = sandbox.run("runq", "-v", timeout=180)
        except subprocess.TimeoutExpired as e:
            ps = subprocess.run(["ps", "-eo", "pid,ppid,stat,wchan:20,args"],
                                capture_output=True, text=True).stdout
            raise AssertionError("runq hung (%s): spool %s\n%s\nrunq said: %s" % (
                report_kills(kills), os.listdir(sandbox.spool),
                "\n".join(l for l in ps.splitlines() if sandbox.dir in l or "po-" in l),
                (e.stderr or b"")[-3000:].decode(errors="replace")))
        # 75: some messages were held by the daemon's workers meanwhile
        assert r.returncode in (0, 75), r.stderr
        time.sleep(0.2)
    assert not sandbox.queue_files(), "queue not drained: %s" % sandbox.queue_files()

    # the processes of the killed daemons finish their work and leave
    d.p.terminate()
    d.p.wait(10)
    assert wait_gone(sandbox.cf, 60), "processes outlive their daemon: %s" % leftovers(sandbox.cf)

    accepted, unsure = {}, {}
    for c in clients:
        accepted.update(c.accepted)
        unsure.update(c.unsure)
    got = read_mbox(sandbox.mbox_path(accounts["u1"]))
    counts = {}
    for seq, state in got:
        if state == "ok":
            counts[seq] = counts.get(seq, 0) + 1
    partial = [seq for seq, state in got if state == "fragment"]
    corrupt = [seq for seq, state in got if state == "corrupt"]
    missing = sorted(s for s in accepted if s not in counts)
    strangers = sorted(s for s in counts if s not in accepted and s not in unsure)
    dups = sum(n - 1 for n in counts.values())
    killed_delivery = kills["worker"] + kills["writer"]
    report = ("kills %s; %d accepted, %d unsure, %d messages in the mbox, %d duplicates, "
              "%d partial" % (kills, len(accepted), len(unsure), len(got), dups, len(partial)))
    print(report)
    assert accepted, "no message was accepted: " + report
    assert not missing, "accepted but not delivered: %s; %s" % (missing[:10], report)
    assert not strangers, "delivered but never sent: %s" % strangers[:10]
    assert dups <= BATCH * killed_delivery, "too many duplicates: " + report
    assert not corrupt, "messages with a wrong body in the mailbox: %s; %s" % (corrupt[:10], report)
    assert not partial, "truncated messages in the mailbox: " + report
