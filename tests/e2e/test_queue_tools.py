"""Exim's and sendmail's queue commands: -M QID (deliver now), -Mrm QID
(remove, logged), -qI/-qR/-qS TEXT (deliver what matches), root or the
queue owner only."""
import pytest

from conftest import IS_ROOT


def queue_two(sandbox):
    """Two messages left in the queue (-odq: queued, not delivered)."""
    u1, u2 = sandbox.acc["u1"], sandbox.acc["u2"]
    for to, subj in ((u1, "first"), (u2, "second")):
        r = sandbox.sendmail("-odq", "-f", f"{subj}-sender@example.org", to,
                             message=f"Subject: {subj}\n\nbody\n")
        assert r.returncode == 0, r.stderr
    qids = [f[2:] for f in sandbox.queue_files()]
    assert len(qids) == 2
    return qids


def test_M_delivers_the_named_message_only(sandbox):
    qids = queue_two(sandbox)
    first = [q for q in qids if b"first" in open(f"{sandbox.queue}/qf{q}", "rb").read()][0]
    r = sandbox.run("postoffice", "-M", first)
    assert r.returncode == 0, r.stderr
    assert [m["Subject"] for m in sandbox.mbox(sandbox.acc["u1"])] == ["first"]
    assert sandbox.queue_files() == [f"qf{q}" for q in qids if q != first]


def test_M_unknown_and_malformed(sandbox):
    r = sandbox.run("postoffice", "-M", "ZZZZZZZZZZZZ")
    assert r.returncode == 66 and b"no such message" in r.stderr
    r = sandbox.run("postoffice", "-M", "../etc")
    assert r.returncode == 64 and b"not a queue id" in r.stderr
    r = sandbox.run("postoffice", "-M")
    assert r.returncode == 64


def test_qR_by_recipient_any_case(sandbox):
    if not IS_ROOT:
        pytest.skip("needs two accounts (root creates them) to tell recipients apart")
    queue_two(sandbox)
    r = sandbox.run("runq", "-qR" + sandbox.acc["u2"].upper())
    assert r.returncode == 0, r.stderr
    assert [m["Subject"] for m in sandbox.mbox(sandbox.acc["u2"])] == ["second"]
    assert len(sandbox.queue_files()) == 1


def test_qS_by_sender_any_case(sandbox):
    queue_two(sandbox)
    r = sandbox.run("runq", "-qSFIRST-sender")
    assert r.returncode == 0, r.stderr
    assert [m["Subject"] for m in sandbox.mbox(sandbox.acc["u1"])] == ["first"]
    assert len(sandbox.queue_files()) == 1


def test_qI_by_id(sandbox):
    qids = queue_two(sandbox)
    r = sandbox.run("runq", "-qI" + qids[1][-6:])
    assert r.returncode == 0
    assert sandbox.queue_files() == [f"qf{qids[0]}"]
    r = sandbox.run("runq", "-qR")
    assert r.returncode == 64


def test_Mrm_removes_and_logs(sandbox):
    qids = queue_two(sandbox)
    r = sandbox.run("postoffice", "-v", "-Mrm", qids[0])
    assert r.returncode == 0, r.stderr
    assert f"{qids[0]}: removed".encode() in r.stdout
    # the log lines (-v: also stderr): who deleted it, and the removal
    assert f"{qids[0]}: deleted by=".encode() in r.stderr, r.stderr
    assert f"{qids[0]}: removed\n".encode() in r.stderr, r.stderr
    assert sandbox.queue_files() == [f"qf{qids[1]}"]
    assert b"1 request" in sandbox.mailq().stdout or qids[1].encode() in sandbox.mailq().stdout
    r = sandbox.run("postoffice", "-Mrm", qids[0])
    assert r.returncode == 66


def test_Mrm_refused_to_other_users(sandbox):
    if not IS_ROOT:
        pytest.skip("needs root to play another user")
    qids = queue_two(sandbox)
    r = sandbox.run("postoffice", "-Mrm", qids[0], user=sandbox.acc["u1"])
    assert r.returncode == 77 and b"only root or" in r.stderr
    r = sandbox.run("postoffice", "-M", qids[0], user=sandbox.acc["u1"])
    assert r.returncode == 77
    assert len(sandbox.queue_files()) == 2
    # the queue owner may
    r = sandbox.run("postoffice", "-Mrm", qids[0], user=sandbox.acc["spool"])
    assert r.returncode == 0, r.stderr


def test_Mf_holds_Mt_releases(sandbox):
    qids = queue_two(sandbox)
    r = sandbox.run("postoffice", "-Mf", qids[0])
    assert r.returncode == 0 and f"{qids[0]}: held".encode() in r.stdout, r.stderr
    q = sandbox.mailq().stdout.decode()
    assert "held by" in q and f"release with postoffice -Mt {qids[0]}" in q, q
    # a queue run passes it by; the other one goes
    r = sandbox.runq()
    assert sandbox.queue_files() == [f"qf{qids[0]}"]
    assert sandbox.run("postoffice", "-Mf", qids[0]).returncode == 0  # held already: said
    r = sandbox.run("postoffice", "-Mt", qids[0])
    assert r.returncode == 0 and b"released" in r.stdout
    assert sandbox.runq().returncode == 0
    assert sandbox.queue_files() == []
    r = sandbox.run("postoffice", "-Mt", qids[0])
    assert r.returncode == 66


def test_Mx_unknown_flag(sandbox):
    r = sandbox.run("postoffice", "-Mx", "X")
    assert r.returncode == 64 and b"-Mf QID" in r.stderr
