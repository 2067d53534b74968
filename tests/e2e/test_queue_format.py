"""The one-file queue (postoffice-queue(5)) seen from outside: a torn queue
file is never delivered and is set aside as xf<qid>; a message left in the
old df/cf format by an earlier version is converted and delivered."""
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
