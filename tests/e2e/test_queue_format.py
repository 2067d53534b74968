"""The one-file queue (postoffice-queue(5)) seen from outside: a torn queue
file is never delivered and is set aside as xf<qid> (xf<qid>.N: never
overwritten) and listed by mailq; a message left in the old df/cf format by
an earlier version is converted and delivered; a status record is trusted
only with its own checksum."""
import os

from conftest import QF_HDR_LEN, read_qf


def queue_one(sandbox, user, subject):
    r = sandbox.sendmail("-odq", "-i", user, message=f"Subject: {subject}\n\nbody\n")
    assert r.returncode == 0, r.stderr
    [name] = sandbox.queue_files()
    return name[2:]


def test_torn_queue_file_is_set_aside(sandbox, accounts):
    u = accounts["u1"]
    qid = queue_one(sandbox, u, "torn")
    path = os.path.join(sandbox.queue, "qf" + qid)
    # what a system crash between the rename and the flush can leave: the
    # name durable, the end of the file not
    os.truncate(path, os.path.getsize(path) - 40)
    assert qid not in sandbox.mailq().stdout.decode()
    r = sandbox.runq()
    assert r.returncode == 0, r.stderr
    assert sandbox.mbox(u) == []
    assert sandbox.queue_files() == []
    assert os.path.exists(os.path.join(sandbox.queue, "xf" + qid))
    # set aside for good: later runs neither deliver nor touch it
    sandbox.runq()
    assert sandbox.mbox(u) == []
    assert os.path.exists(os.path.join(sandbox.queue, "xf" + qid))


def test_flipped_bit_in_the_data_is_caught(sandbox, accounts):
    u = accounts["u1"]
    qid = queue_one(sandbox, u, "flip")
    path = os.path.join(sandbox.queue, "qf" + qid)
    with open(path, "r+b") as f:
        f.seek(QF_HDR_LEN + 3)
        c = f.read(1)
        f.seek(QF_HDR_LEN + 3)
        f.write(bytes([c[0] ^ 0x01]))
    sandbox.runq()
    assert sandbox.mbox(u) == []
    assert os.path.exists(os.path.join(sandbox.queue, "xf" + qid))


def test_old_two_file_message_is_converted_and_delivered(sandbox, accounts):
    u = accounts["u1"]
    qid = queue_one(sandbox, u, "from the old version")
    path = os.path.join(sandbox.queue, "qf" + qid)
    data, ctl = read_qf(path)
    st = os.stat(path)
    # the same message as the two-file version kept it: df<qid> + cf<qid>
    # whose control records end with the plain "." marker
    records, end, _ = ctl.partition("\n. ")
    assert end, ctl
    for name, content in (("df", data), ("cf", (records + "\n.\n").encode())):
        p = os.path.join(sandbox.queue, name + qid)
        with open(p, "wb") as f:
            f.write(content)
        os.chmod(p, 0o600)
        os.chown(p, st.st_uid, st.st_gid)
    os.unlink(path)
    r = sandbox.runq()
    assert r.returncode == 0, r.stderr
    msgs = sandbox.mbox(u)
    assert [str(m["Subject"]) for m in msgs] == ["from the old version"]
    assert msgs[0].get_payload() == "body\n"
    left = [f for f in os.listdir(sandbox.queue) if f not in ("maildrop", "trigger")]
    assert left == [], left


def test_set_aside_files_are_never_overwritten_and_are_listed(sandbox, accounts):
    u = accounts["u1"]
    qid = queue_one(sandbox, u, "torn twice")
    path = os.path.join(sandbox.queue, "qf" + qid)
    with open(path, "rb") as f:
        good = f.read()
    first = good[:-40]
    second = good[:-30]
    for n, torn in enumerate((first, second, first)):
        with open(path, "wb") as f:
            f.write(torn)
        r = sandbox.runq()
        assert r.returncode == 0, r.stderr
    names = ["xf" + qid, "xf" + qid + ".1", "xf" + qid + ".2"]
    contents = [open(os.path.join(sandbox.queue, n), "rb").read() for n in names]
    assert contents == [first, second, first]  # each kept as it was
    out = sandbox.mailq().stdout.decode()
    assert "Mail queue is empty" not in out
    for n in names:
        assert f"set aside: corrupt queue file {n}, see postoffice-queue(5)" in out
    assert "0 requests, 3 set aside" in out
    assert sandbox.mbox(u) == []


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def status_record(text):
    return f"{text}\t{fnv1a64(text.encode()):016x}\n".encode()


def test_status_records_carry_a_checksum(sandbox, accounts):
    """A recorded result is trusted only with its checksum: one flipped byte
    makes the recipient count as not yet delivered (delivered again, never
    lost), with a log line."""
    u1, u2 = accounts["u1"], accounts["u2"]
    r = sandbox.sendmail("-odq", "-i", u1, u2, message="Subject: sums\n\nbody\n")
    assert r.returncode == 0, r.stderr
    [name] = sandbox.queue_files()
    path = os.path.join(sandbox.queue, name)
    # what the runner writes: a record with its checksum
    _, ctl = read_qf(path)
    assert "\tD" not in ctl
    good = status_record("D0 D - 2.0.0 delivered by hand")
    bad = bytearray(status_record("D1 P - 4.2.0 try again later"))
    assert bad[3:4] == b"P"
    bad[3] = ord("D")  # one byte: "deferred" would read "delivered"
    with open(path, "ab") as f:
        f.write(good + bytes(bad))
    r = sandbox.runq("-v")
    assert r.returncode == 0, r.stderr
    assert "1 damaged status record ignored" in r.stderr.decode()
    assert sandbox.mbox(u1) == []  # its record holds
    assert [m["Subject"] for m in sandbox.mbox(u2)] == ["sums"]
    assert sandbox.queue_files() == []

