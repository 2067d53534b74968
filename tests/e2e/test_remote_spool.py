"""remote_deliver() on a real queued message (spool API), without the queue
runner: every result is recorded durably in the control file, read back from
disk; a second attempt sends only what is still pending."""
import os

from remote_util import po_remote
from smtpscript import ScriptServer


def test_results_recorded_and_retry_sends_only_pending(tmp_path):
    state = {"later_ok": False}

    def rcpt(arg):
        if "bad" in arg:
            return b"550-5.1.1 no such user\r\n550 5.1.1 really\x00\r\n"
        if "later" in arg and not state["later_ok"]:
            return b"451 4.2.0 try again later\r\n"
        return b"250 2.1.5 ok\r\n"
    s = ScriptServer(rcpt=rcpt).start()
    try:
        q = tmp_path / "queue"
        q.mkdir(mode=0o700)
        msg = tmp_path / "msg"
        msg.write_bytes(b"Subject: spool\n\nbody\n")
        opts = [f"relay-host=[127.0.0.1]:{s.port}", "hostname=client.test"]
        rc, out, err = po_remote("queue", str(q), "s@client.test", str(msg), "ok@remote.test",
                                 "bad@remote.test", "later@remote.test", opts=opts)
        assert rc == 0, err
        qid = out.strip()

        rc, out, err = po_remote("deliver", str(q), qid, opts=opts)
        assert rc == 0, err
        lines = out.splitlines()
        got = {l.split("\t")[0]: l.split("\t")[1:] for l in lines[:-1]}
        assert got["ok@remote.test"][:1] == ["done"]
        assert got["bad@remote.test"] == ["failed", "5.1.1 550 no such user; really\\x00",
                                          "[127.0.0.1]"]
        assert got["later@remote.test"][:2] == ["pending", "4.2.0 451 try again later"]
        assert lines[-1] == "pending 1"
        assert len(s.messages) == 1
        # the control file holds no raw control character from the hostile reply
        with open(q / f"qf{qid}", "rb") as f:
            raw = f.read().split(b"Subject: spool\n\nbody\n", 1)[1]  # the control part
        assert b"\x00" not in raw and b"\r" not in raw

        state["later_ok"] = True
        rc, out, err = po_remote("deliver", str(q), qid, opts=opts)
        assert rc == 0, err
        got = {l.split("\t")[0]: l.split("\t")[1:] for l in out.splitlines()[:-1]}
        assert got["later@remote.test"][0] == "done"
        assert got["ok@remote.test"][0] == "done"
        assert out.splitlines()[-1] == "pending 0"
        # only the pending recipient went the second time: nothing duplicated
        assert [c for c in s.commands if c.startswith("RCPT")] == [
            "RCPT TO:<ok@remote.test>", "RCPT TO:<bad@remote.test>",
            "RCPT TO:<later@remote.test>", "RCPT TO:<later@remote.test>"]
        assert len(s.messages) == 2
    finally:
        s.stop()
