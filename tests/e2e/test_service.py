"""The daemon as a service: systemd's notify protocol (READY, RELOADING,
STOPPING over $NOTIFY_SOCKET, no libsystemd), no line twice in the journal,
one daemon per pid file and per queue, and start-up checks that refuse a
broken installation with one clear line."""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import IS_ROOT, free_port


def start(sandbox, env=None, stderr=subprocess.PIPE, args=("-bD",)):
    port = free_port()
    sandbox.write_config(listen=f"127.0.0.1:{port}")
    e = dict(os.environ)
    e.pop("NOTIFY_SOCKET", None)
    e.pop("JOURNAL_STREAM", None)
    e.update(env or {})
    p = subprocess.Popen(sandbox.cmd("postoffice", *args), env=e,
                         stdout=subprocess.DEVNULL, stderr=stderr)
    sandbox.procs.append(p)
    return p, port


def wait_listening(port, p, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            if p.poll() is not None:
                return False
            time.sleep(0.05)
    return False


def notify_socket(path_or_abstract):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if path_or_abstract.startswith("@"):
        s.bind("\0" + path_or_abstract[1:])
    else:
        s.bind(path_or_abstract)
        os.chmod(path_or_abstract, 0o666)
    s.settimeout(10)
    return s


def messages_until(s, want):
    got = []
    while True:
        m = s.recv(4096).decode()
        got.append(m)
        if want in m:
            return got


@pytest.mark.parametrize("abstract", [False, True])
def test_ready_reloading_stopping(sandbox, abstract):
    name = f"@po-notify-{os.getpid()}-{time.time_ns()}" if abstract else \
        os.path.join(sandbox.dir, "notify")
    s = notify_socket(name)
    p, port = start(sandbox, env={"NOTIFY_SOCKET": name})
    got = messages_until(s, "READY=1")
    # READY comes once the sockets listen: a client may connect right away
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    assert c.recv(100).startswith(b"220")
    c.close()
    assert not any("STOPPING" in m for m in got)
    p.send_signal(signal.SIGHUP)
    got = messages_until(s, "READY=1")
    assert "RELOADING=1" in "".join(got)
    p.send_signal(signal.SIGTERM)
    assert any("STOPPING=1" in m for m in messages_until(s, "STOPPING=1"))
    assert p.wait(timeout=10) == 0
    s.close()


def test_without_notify_socket_nothing_changes(sandbox):
    p, port = start(sandbox)
    assert wait_listening(port, p)
    p.terminate()
    assert p.wait(timeout=10) == 0


def test_journal_stream_gets_each_line_once(sandbox):
    """Under systemd, stderr is the journal, which also gets every syslog
    line: the daemon then writes its log to syslog only."""
    log = os.path.join(sandbox.dir, "stderr.log")
    with open(log, "w") as f:
        st = os.fstat(f.fileno())
        p, port = start(sandbox, env={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, stderr=f)
        assert wait_listening(port, p)
        p.terminate()
        p.wait(timeout=10)
    assert "accepting connections" not in open(log).read()
    # a stderr that is not the journal gets the log as before
    log2 = os.path.join(sandbox.dir, "stderr2.log")
    with open(log2, "w") as f:
        p, port = start(sandbox, env={"JOURNAL_STREAM": "1:1"}, stderr=f)
        assert wait_listening(port, p)
        p.terminate()
        p.wait(timeout=10)
    assert "accepting connections" in open(log2).read()


def test_second_daemon_same_pidfile_refused(sandbox):
    p, port = start(sandbox)
    assert wait_listening(port, p)
    pid = open(sandbox.pidfile).read().strip()
    assert pid == str(p.pid)
    q, _ = start(sandbox)
    out = q.communicate(timeout=10)[1].decode()
    assert q.returncode == 69, out  # EX_UNAVAILABLE
    assert "another postoffice daemon" in out and pid in out
    # the first one is untouched, its pid file too
    assert p.poll() is None and open(sandbox.pidfile).read().strip() == pid
    p.terminate()
    p.wait(timeout=10)


def test_second_daemon_same_queue_refused(sandbox):
    p, port = start(sandbox)
    assert wait_listening(port, p)
    # the same queue under another pid file and port
    cf2 = os.path.join(sandbox.dir, "second.cf")
    text = open(sandbox.cf).read()
    text = text.replace(f"pidfile={sandbox.pidfile}",
                        "pidfile=" + os.path.join(sandbox.dir, "other.pid"))
    text = "\n".join(l for l in text.splitlines() if not l.startswith("listen="))
    with open(cf2, "w") as f:
        f.write(text + f"\nlisten=127.0.0.1:{free_port()}\n")
    q = subprocess.run([sandbox.cmd("postoffice")[0], "-C", cf2, "-bD"],
                       capture_output=True, timeout=10)
    assert q.returncode == 69, q.stderr
    assert b"another postoffice daemon is running on the queue" in q.stderr
    p.terminate()
    p.wait(timeout=10)


def test_stale_pidfile_does_not_stop_a_start(sandbox):
    """A pid file left by a killed daemon holds no lock: the next start takes it."""
    with open(sandbox.pidfile, "w") as f:
        f.write("999999\n")
    p, port = start(sandbox)
    assert wait_listening(port, p)
    assert open(sandbox.pidfile).read().strip() == str(p.pid)
    p.kill()
    p.wait(timeout=10)
    q, port = start(sandbox)
    assert wait_listening(port, q)
    q.terminate()
    q.wait(timeout=10)


def refused(sandbox, **opts):
    sandbox.write_config(listen=f"127.0.0.1:{free_port()}", **opts)
    r = subprocess.run(sandbox.cmd("postoffice", "-bD"), capture_output=True, timeout=10)
    assert r.returncode != 0
    err = r.stderr.decode().strip().splitlines()
    return r.returncode, err


def test_missing_mail_spool_refused(sandbox):
    rc, err = refused(sandbox, mailspool=os.path.join(sandbox.dir, "nope"))
    assert rc == 72 and "mail spool" in err[-1] and "missing" in err[-1], err


def test_missing_user_refused(sandbox):
    if not IS_ROOT:
        pytest.skip("only root looks the account up")
    rc, err = refused(sandbox, user="no-such-account-po")
    assert rc == 67 and "no-such-account-po" in err[-1], err


def test_queue_of_another_owner_refused(sandbox):
    if not IS_ROOT:
        pytest.skip("needs root to give the queue away")
    other = pwd.getpwnam(sandbox.acc["u2"])
    os.chown(sandbox.queue, other.pw_uid, other.pw_gid)
    rc, err = refused(sandbox)
    assert rc == 72 and "belongs to uid" in err[-1] and "chown" in err[-1], err


def test_missing_queue_created(sandbox):
    shutil.rmtree(sandbox.queue)
    p, port = start(sandbox)
    assert wait_listening(port, p)
    st = os.stat(sandbox.queue)
    assert oct(st.st_mode & 0o7777) == "0o711"
    assert st.st_uid == pwd.getpwnam(sandbox.acc["spool"]).pw_uid
    p.terminate()
    p.wait(timeout=10)


def test_stale_aliases_database_warned(sandbox):
    sandbox.set_aliases("postmaster: root\n")
    later = time.time() + 5
    os.utime(sandbox.aliases, (later, later))
    p, port = start(sandbox)
    assert wait_listening(port, p)
    p.terminate()
    err = p.communicate(timeout=10)[1].decode()
    assert "newer than its database" in err and "newaliases" in err
