"""Session processes serving more than one connection (spare.h,
session-max-use=, session-max-idle=): the next client finds a clean session
(no state of the last one: transaction, HELO, TLS), the process stays
unprivileged, the limits count only sessions serving a client, and the
process ends at its use limit, when idle too long, and at SIGHUP."""
import os
import signal
import ssl
import time

import pytest

from smtpclient import Raw
from test_tls_server import HOST, Pki, starttls_raw, tls_config
from procs import children, comm


@pytest.fixture(autouse=True)
def _no_load_limit(sandbox):
    """The shared test machine is often loaded: load= would refuse us."""
    sandbox.write_config(load=0)


@pytest.fixture
def pki(sandbox):
    return Pki(os.path.join(sandbox.dir, "pki"))


def wait_until(pred, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def server_socket_inode(c):
    """The inode of the server's end of connection c (/proc/net/tcp)."""
    lport = c.s.getsockname()[1]
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            x = line.split()
            if int(x[2].split(":")[1], 16) == lport and x[1].startswith("0100007F"):
                if x[9] != "0":
                    return x[9]
    return None


def serving(p, c):
    """The session process holding connection c."""
    want = "socket:[%s]" % server_socket_inode(c)
    found = []

    def look():
        for k in children(p.pid):
            try:
                if any(os.readlink("/proc/%d/fd/%s" % (k, fd)) == want
                       for fd in os.listdir("/proc/%d/fd" % k)):
                    found.append(k)
                    return True
            except OSError:
                pass
        return False
    assert wait_until(look), want
    return found[0]


def waiting(p):
    return [k for k in children(p.pid) if comm(k) == "po-spare"]


def uids(pid):
    with open("/proc/%d/status" % pid) as f:
        return [line.split()[1:] for line in f if line.startswith("Uid:")][0]


def session(sandbox, p):
    """A connection and the pid of the process serving it."""
    c = Raw(sandbox.port)
    assert c.reply()[0] == 220
    return c, serving(p, c)


def end(c):
    c.cmd("QUIT")
    c.close()


def no_session(p):
    return not [k for k in children(p.pid) if comm(k) == "po-session"]


def settle(sandbox, p):
    """After the daemon's start probe: one session, and none running after
    it, so the next connection goes to the process back last."""
    c, _ = session(sandbox, p)
    end(c)
    assert wait_until(lambda: no_session(p))


def test_next_client_served_by_the_same_process_from_a_clean_state(sandbox):
    p = sandbox.start_daemon()
    settle(sandbox, p)
    rcpt = "RCPT TO:<%s@%s>" % (sandbox.acc["u1"], sandbox.hostname)
    c, first = session(sandbox, p)
    assert c.cmd("EHLO one.example")[0] == 250
    assert c.cmd("MAIL FROM:<a@one.example>")[0] == 250
    assert c.cmd(rcpt)[0] == 250
    c.close()  # gone mid-transaction, without QUIT
    assert wait_until(lambda: first in waiting(p))
    c, second = session(sandbox, p)
    assert second == first
    assert "0" not in uids(second)  # still user=, never root again
    # nothing of the last client: no transaction, no HELO
    assert c.cmd(rcpt)[0] == 503
    assert c.cmd("MAIL FROM:<b@two.example>")[0] == 503
    assert c.cmd("EHLO two.example")[0] == 250
    assert c.cmd("MAIL FROM:<b@two.example>")[0] == 250
    assert c.cmd(rcpt)[0] == 250
    assert c.cmd("DATA")[0] == 354
    assert c.cmd("Subject: second\r\n\r\nbody\r\n.")[0] == 250
    end(c)
    msgs = sandbox.wait_for_mail(sandbox.acc["u1"])
    assert len(msgs) == 1 and msgs[0]["Subject"] == "second"
    assert "from two.example" in msgs[0]["Received"]


def test_max_use_one_is_a_process_per_connection(sandbox):
    sandbox.write_config(session_max_use=1)
    p = sandbox.start_daemon()
    seen = []
    for _ in range(3):
        c, pid = session(sandbox, p)
        seen.append(pid)
        end(c)
        assert wait_until(lambda: pid not in children(p.pid))
    assert len(set(seen)) == 3


def test_a_process_ends_at_its_use_limit(sandbox):
    sandbox.write_config(session_max_use=2)
    p = sandbox.start_daemon()
    seen = []
    for _ in range(5):
        c, pid = session(sandbox, p)
        seen.append(pid)
        end(c)
        assert wait_until(lambda: pid in waiting(p) or pid not in children(p.pid))
    assert max(seen.count(k) for k in seen) == 2, seen  # reused, twice at most
    for k in seen:
        if seen.count(k) == 2:
            assert wait_until(lambda: k not in children(p.pid))


def test_idle_process_ends_after_max_idle(sandbox):
    sandbox.write_config(session_max_idle="1s")
    p = sandbox.start_daemon()
    c, pid = session(sandbox, p)
    end(c)
    assert wait_until(lambda: pid in waiting(p))
    assert wait_until(lambda: pid not in children(p.pid), timeout=10)
    # and a spare still waits for the next client
    assert wait_until(lambda: len(waiting(p)) >= 1)
    c, _ = session(sandbox, p)
    end(c)


def test_sighup_ends_idle_processes(sandbox):
    p = sandbox.start_daemon()
    c, pid = session(sandbox, p)
    end(c)
    assert wait_until(lambda: pid in waiting(p))
    os.kill(p.pid, signal.SIGHUP)
    assert wait_until(lambda: pid not in children(p.pid))
    c, other = session(sandbox, p)
    assert other != pid
    end(c)


def test_per_host_limit_counts_only_busy_processes(sandbox):
    sandbox.write_config(clients_per_host=1, clients=1)
    p = sandbox.start_daemon()
    # the daemon's start probe may still count as the one client: wait
    # until its session is over (a 220)
    def first():
        c = Raw(sandbox.port)
        code = c.reply()[0]
        end(c) if code == 220 else c.close()
        return code == 220
    assert wait_until(first)
    for _ in range(5):
        # a process that is back has told the master before it says so
        assert wait_until(lambda: no_session(p))
        c = Raw(sandbox.port)
        assert c.reply()[0] == 220
        end(c)
    assert wait_until(lambda: no_session(p))
    busy = Raw(sandbox.port)
    assert busy.reply()[0] == 220
    extra = Raw(sandbox.port)
    assert extra.reply()[0] == 421  # the one busy session counts
    extra.close()
    end(busy)


def test_tls_session_then_a_plaintext_one_in_the_same_process(sandbox, pki):
    """TLS state does not survive the connection: the next client starts in
    plaintext with STARTTLS offered, and resumes its TLS session (the
    ticket keys are in the process)."""
    tls_config(sandbox, pki, both=False)
    p = sandbox.start_daemon()
    settle(sandbox, p)
    ctx = ssl._create_unverified_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # the session is known at once
    c, first = session(sandbox, p)
    c.cmd("EHLO one.example")
    assert c.cmd("STARTTLS")[0] == 220
    starttls_raw(c, ctx)
    assert c.cmd("EHLO one.example")[0] == 250
    tls_session = c.s.session
    end(c)
    assert wait_until(lambda: first in waiting(p))
    c, second = session(sandbox, p)
    assert second == first
    code, lines = c.cmd("EHLO two.example")
    assert code == 250 and b"STARTTLS" in lines, lines
    assert c.cmd("STARTTLS")[0] == 220
    c.s = ctx.wrap_socket(c.s, server_hostname=HOST, session=tls_session)
    c.f = c.s.makefile("rb")
    assert c.s.session_reused
    assert c.cmd("EHLO two.example")[0] == 250
    end(c)


def test_no_descriptor_kept_from_one_session_to_the_next(sandbox):
    """Whatever a session opens (connection, queue file, DNS, tcp wrappers'
    check) is closed when it ends: a process back from 10 sessions with a
    message each holds what it held after the first."""
    p = sandbox.start_daemon()
    settle(sandbox, p)
    rcpt = "RCPT TO:<%s@%s>" % (sandbox.acc["u1"], sandbox.hostname)
    counts, pids = [], set()
    for i in range(10):
        c, pid = session(sandbox, p)
        pids.add(pid)
        c.cmd("EHLO client.example")
        assert c.cmd("MAIL FROM:<a@client.example>")[0] == 250
        assert c.cmd(rcpt)[0] == 250
        assert c.cmd("DATA")[0] == 354
        assert c.cmd("Subject: %d\r\n\r\nbody\r\n." % i)[0] == 250
        end(c)
        assert wait_until(lambda: pid in waiting(p))
        counts.append(len(os.listdir("/proc/%d/fd" % pid)))
    assert len(pids) == 1, pids  # one process served them all
    assert len(set(counts)) == 1, counts
    assert len(sandbox.wait_for_mail(sandbox.acc["u1"], count=10)) == 10
