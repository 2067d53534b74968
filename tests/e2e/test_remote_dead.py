"""A queue run remembers an address whose connect failed (smtp_dead.h): the
other messages to it are deferred with the remembered reason and no new
connect; the next queue run is a new process and tries again (issue 14)."""
import os
import socket

import pytest


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connect is refused
    return port


def test_refused_address_tried_once_per_run(sandbox):
    if os.geteuid() != 0:
        pytest.skip("relay-host is a root-only option; CI runs as root")
    port = closed_port()
    sandbox.write_config(relay_host=f"[127.0.0.1]:{port}", delivery_processes=1)
    for i in range(5):
        r = sandbox.sendmail("-i", "-odq", f"u{i}@remote.test",
                             message=f"Subject: m{i}\n\nbody {i}\n")
        assert r.returncode == 0, r.stderr
    for run in (1, 2):
        r = sandbox.runq("-v")
        assert r.returncode == 0, r.stderr
        err = r.stderr.decode()
        # one connect per run (the verbose transcript's OPEN line), not five
        assert err.count(f"OPEN ([127.0.0.1]:{port})") == 1, err
        assert err.count("not tried again in this run") == 4, err
        queued = sandbox.queued()
        assert len(queued) == 5
        for _, ctl in queued.values():
            # every message deferred with the connect's own reason
            assert f"4.4.1 [127.0.0.1]:{port}: connect: Connection refused" in ctl
