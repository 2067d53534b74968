"""Remote delivery through the real queue runner: sendmail queues, runq -v
delivers to a scripted SMTP server given as relay-host, results land in the
control file (status, Remote-MTA) and the log."""
import os

import pytest

from smtpscript import ScriptServer


def rcpt_reply(arg):
    if "bad" in arg:
        return b"550 5.1.1 no such user\r\n"
    if "later" in arg:
        return b"451 4.2.0 try again later\r\n"
    return b"250 2.1.5 ok\r\n"


@pytest.fixture
def server():
    s = ScriptServer(rcpt=rcpt_reply).start()
    yield s
    s.stop()


def control_files(sb):
    return {qid: ctl for qid, (_, ctl) in sb.queued().items()}


def test_runq_delivers_remote_recipients(sandbox, server):
    if os.geteuid() != 0:
        pytest.skip("relay-host is a root-only option; CI runs as root")
    sandbox.write_config(relay_host=f"[127.0.0.1]:{server.port}")
    msg = "Subject: remote\n\nhello\n.\n..dots\nbye\n"
    r = sandbox.sendmail("-i", "-odq", "ok@remote.test", "bad@remote.test",
                         "later@remote.test", message=msg)
    assert r.returncode == 0, r.stderr
    import pwd
    spool_uid = pwd.getpwnam(sandbox.acc["spool"]).pw_uid
    dfs = sandbox.queue_files()
    if spool_uid != 0 and any(os.stat(os.path.join(sandbox.queue, f)).st_uid != spool_uid
                              for f in dfs):
        pytest.xfail("integration bug (reported to the lead): sendmail run by root leaves "
                     "the data file owned by root, and remote delivery runs as user= "
                     "after dropping privileges, so it cannot open it; runq should open "
                     "it before the fork or the spool should chown it to user=")
    r = sandbox.runq("-v")
    assert r.returncode == 0, r.stderr
    err = r.stderr.decode()
    # the dialogue, line by line
    assert "127.0.0.1 << RCPT TO:<bad@remote.test>" in err, err
    assert "127.0.0.1 >> 550 5.1.1 no such user" in err, err
    # one message over SMTP, dot-stuffing undone by nobody: on the wire "..", "...dots"
    assert len(server.messages) == 1
    assert b"\r\n..\r\n...dots\r\nbye\r\n" in server.messages[0]
    # results recorded: the deferred one is still queued with its status
    [(qid, cf)] = control_files(sandbox).items()
    assert "2.0.0 250 queued" in cf
    assert "later@remote.test" in cf
    assert "4.2.0 451 try again later" in cf
    assert "5.1.1 550 no such user" in cf
    for rcpt, word in (("ok", "sent"), ("bad", "bounced"), ("later", "deferred")):
        assert f"to=<{rcpt}@remote.test>, relay=[127.0.0.1]:{server.port}" in err
        assert f"status={word}" in err


def ps_titles():
    """The postoffice process titles running now (from /proc/PID/cmdline)."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").strip().decode(errors="replace")
            except OSError:
                continue
            if cmd.startswith("postoffice: "):
                out.append(cmd)
    return out


@pytest.mark.parametrize("how", ["runq", "sendmail-v"])
def test_remote_delivery_process_titles(sandbox, how):
    """While a remote delivery talks to the server, ps shows the delivering
    child as 'postoffice: remote DESTINATION' (and runq as 'postoffice: queue
    run'), both for a queue run's worker and for sendmail -v's child."""
    if os.geteuid() != 0:
        pytest.skip("relay-host is a root-only option; CI runs as root")
    seen = []

    def rcpt(arg):
        seen.extend(ps_titles())
        return b"250 2.1.5 ok\r\n"

    s = ScriptServer(rcpt=rcpt).start()
    try:
        relay = f"[127.0.0.1]:{s.port}"
        sandbox.write_config(relay_host=relay)
        if how == "runq":
            r = sandbox.sendmail("-i", "-odq", "ok@remote.test", message="Subject: t\n\nx\n")
            assert r.returncode == 0, r.stderr
            r = sandbox.runq()
        else:
            r = sandbox.sendmail("-i", "-v", "ok@remote.test", message="Subject: t\n\nx\n")
        assert r.returncode == 0, r.stderr
        assert len(s.messages) == 1, (r.stdout, r.stderr, s.commands)
    finally:
        s.stop()
    assert f"postoffice: remote {relay}" in seen, seen
    if how == "runq":
        assert "postoffice: queue run" in seen, seen
