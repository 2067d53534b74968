"""Helpers for the remote-delivery tests: run tests/bin/po-remote."""
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DRIVER = os.path.join(ROOT, "tests", "bin", "po-remote")


def need_driver():
    if not os.access(DRIVER, os.X_OK):
        pytest.fail("tests/bin/po-remote is not built: run make")


def po_remote(*args, opts=(), timeout=60):
    """Run the driver; returns (returncode, stdout, stderr)."""
    need_driver()
    argv = [DRIVER]
    for o in opts:
        argv += ["-o", o]
    argv += list(args)
    r = subprocess.run(argv, capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def send(sender, msgfile, *rcpts, opts=(), flags=(), timeout=60):
    """Deliver; returns ({rcpt: (outcome, status, mta, relay)}, stderr, raw stdout)."""
    rc, out, err = po_remote(*flags, "send", sender, str(msgfile), *rcpts, opts=opts,
                             timeout=timeout)
    assert rc == 0, err
    res = {}
    for line in out.splitlines():
        f = line.split("\t")
        assert len(f) == 5, repr(line)
        res[f[0]] = tuple(f[1:])
    assert len(res) == len(set(rcpts)), out
    return res, err, out
