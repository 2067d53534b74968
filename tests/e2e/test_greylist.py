"""Greylisting (greylist(7), smtpauth(5), authexpire(8)).  Remote clients are
played with -bs -R ADDR, run as the unprivileged user= (as the daemon's
sessions run); a DNS server of our own gives 203.0.113.7 a verified name and
203.0.113.8 none.  The database is read and written with python's dbm.gnu
(a gdbm library we did not write), in the original postoffice's format:
key "LOCALPART@[IP]\\0", value "ALLOWED LAST\\0"."""
import dbm.gnu
import os
import pwd
import re
import shutil
import stat
import subprocess
import time

import pytest

from dnsserver import ZoneServer

ZONE = {
    "7.113.0.203.in-addr.arpa": [("PTR", "good.client.example")],
    "good.client.example": [("A", "203.0.113.7")],
    "exists.example": [("MX", 10, "mx.exists.example")],
    "mx.exists.example": [("A", "198.51.100.25")],
}
GOOD, NOPTR = "203.0.113.7", "203.0.113.8"
HERE = os.path.dirname(os.path.abspath(__file__))
AUTHEXPIRE = os.path.join(HERE, "..", "..", "authexpire")


@pytest.fixture
def dns():
    z = ZoneServer(ZONE).start()
    yield z.resolver
    z.stop()


@pytest.fixture
def sb(sandbox, dns):
    sandbox.db = os.path.join(sandbox.dir, "db", "smtpauth")
    sandbox.write_config(resolver=dns, dns_timeout=2, dns_tries=1, load=0,
                         greylist=True, greylist_db=sandbox.db, delay=2)
    return sandbox


def started(sb):
    """The daemon (on loopback) creates the database for user= at start."""
    sb.start_daemon()
    path = sb.db + ".db"
    deadline = time.time() + 5
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.05)
    return sb


def smtp(sb, peer, lines, user=None):
    """One -bs session as client peer; the replies as [(code, [lines])]."""
    script = ("\r\n".join(lines + ["QUIT"]) + "\r\n").encode()
    r = sb.run("postoffice", "-bs", "-R", peer, input=script,
               user=sb.acc["spool"] if user is None else user)
    replies, cur = [], []
    for line in r.stdout.split(b"\r\n"):
        if not line:
            continue
        cur.append(line[4:].decode())
        if line[3:4] == b" ":
            replies.append((int(line[:3]), cur))
            cur = []
    return replies, r


def rcpt(sb):
    return "%s@%s" % (sb.acc["u1"], sb.hostname)


def mail(sb, peer, sender="a@exists.example", to=None, data=True):
    lines = ["EHLO client.example", "MAIL FROM:<%s>" % sender, "RCPT TO:<%s>" % (to or rcpt(sb))]
    if data:
        lines += ["DATA", "Subject: grey\r\n\r\nhello\r\n."]
    return smtp(sb, peer, lines)[0]


def db_items(sb):
    with dbm.gnu.open(sb.db + ".db", "ru") as db:
        return {k: db[k] for k in db.keys()}


def wait_of(reply):
    m = re.search(r"try again in (\d+) seconds", reply[1][0])
    assert m, reply
    return int(m.group(1))


def test_timeline(sb):
    started(sb)
    st = os.stat(sb.db + ".db")
    assert st.st_uid == pwd.getpwnam(sb.acc["spool"]).pw_uid
    assert stat.S_IMODE(st.st_mode) == 0o600
    t0 = int(time.time())
    r = mail(sb, GOOD, data=False)
    assert r[3][0] == 451 and r[3][1][0].startswith("4.7.1 greylisted"), r
    assert r[-1][0] == 221
    items = db_items(sb)
    assert list(items) == [b"a@[203.0.113.7]\0"], items
    allowed, last = items[b"a@[203.0.113.7]\0"].rstrip(b"\0").split()
    assert int(last) - t0 in (0, 1) and int(allowed) - int(last) == 2, items
    # the session stays open: an invalid recipient still gets its 550, the
    # valid one the wait, and the session goes on
    r, _ = smtp(sb, GOOD, ["EHLO client.example", "MAIL FROM:<a@exists.example>",
                           "RCPT TO:<nosuch@%s>" % sb.hostname, "RCPT TO:<%s>" % rcpt(sb),
                           "NOOP", "RSET"])
    assert r[3][0] == 550 and r[4][0] == 451 and wait_of(r[4]) <= 2, r
    assert r[5][0] == 250 and r[6][0] == 250 and r[7][0] == 221, r
    time.sleep(2.2)
    r = mail(sb, GOOD)
    assert [x[0] for x in r] == [220, 250, 250, 250, 354, 250, 221], r
    assert len(sb.wait_for_mail(sb.acc["u1"])) == 1
    allowed2, last2 = db_items(sb)[b"a@[203.0.113.7]\0"].rstrip(b"\0").split()
    assert allowed2 == allowed and int(last2) >= int(allowed), "the allowed time never creeps"
    # another local part from the same client waits again
    assert mail(sb, GOOD, sender="b@exists.example", data=False)[3][0] == 451


def test_invalid_recipient_alone_makes_no_entry(sb):
    started(sb)
    r = mail(sb, GOOD, to="nosuch@%s" % sb.hostname, data=False)
    assert r[3][0] == 550, r
    assert db_items(sb) == {}


def test_longer_waits(sb):
    """delay= times 2 without a reverse DNS name, 4 for the null sender, 5
    for both (greylist(7))."""
    sb.write_config(delay=100)
    started(sb)
    cases = [(GOOD, "a@exists.example", 100, b"a@[203.0.113.7]\0"),
             (NOPTR, "a@exists.example", 200, b"a@[203.0.113.8]\0"),
             (GOOD, "", 400, b"<>@[203.0.113.7]\0"),
             (NOPTR, "", 500, b"<>@[203.0.113.8]\0")]
    for peer, sender, wait, key in cases:
        r = mail(sb, peer, sender=sender, data=False)
        assert r[3][0] == 451 and wait - 1 <= wait_of(r[3]) <= wait, (peer, sender, r)
        allowed, last = db_items(sb)[key].rstrip(b"\0").split()
        assert int(allowed) - int(last) == wait


def test_greylist_from(sb):
    sb.write_config(greylist_from=True)
    started(sb)
    assert mail(sb, GOOD, data=False)[3][0] == 451
    assert list(db_items(sb)) == [b"a@exists.example\0"]


def test_exempt_clients(sb):
    started(sb)
    # loopback and our own addresses may relay: no greylisting
    assert mail(sb, "127.0.0.1", data=False)[3][0] == 250
    sb.write_config(trusted="[%s]" % NOPTR)  # root-only: root runs this session
    assert smtp(sb, NOPTR, ["EHLO c.example", "MAIL FROM:<a@exists.example>",
                            "RCPT TO:<%s>" % rcpt(sb)], user="root")[0][3][0] == 250
    sb.write_config(trusted=None, greylist=False)
    assert mail(sb, GOOD, data=False)[3][0] == 250
    assert db_items(sb) == {}


def test_original_database(sb):
    """A database in the original's format: an approved entry, one still
    waiting, a forbidden one, and a manual entry for a whole address."""
    started(sb)
    now = int(time.time())
    with dbm.gnu.open(sb.db + ".db", "w") as db:
        db[b"ok@[203.0.113.7]\0"] = b"%d %d\0" % (now - 3600, now - 7200)
        db[b"wait@[203.0.113.7]\0"] = b"%d %d\0" % (now + 600, now - 60)
        db[b"bad@[203.0.113.7]\0"] = b"* %d\0" % (now - 60)
        db[b"white@exists.example\0"] = b"%d %d\0" % (now - 1, now - 1)
    assert mail(sb, GOOD, sender="ok@exists.example", data=False)[3][0] == 250
    r = mail(sb, GOOD, sender="wait@exists.example", data=False)
    assert r[3][0] == 451 and 590 <= wait_of(r[3]) <= 600, r
    r = mail(sb, GOOD, sender="bad@exists.example", data=False)
    assert r[3][0] == 451 and "try again later" in r[3][1][0], r
    # the whole-address entry lets that sender in from any client
    assert mail(sb, NOPTR, sender="white@exists.example", data=False)[3][0] == 250
    items = db_items(sb)
    assert b"white@[203.0.113.8]\0" not in items
    allowed, last = items[b"ok@[203.0.113.7]\0"].rstrip(b"\0").split()
    assert int(allowed) == now - 3600 and int(last) >= now


def test_fail_open(sb):
    """No database, or one user= cannot read: mail goes through; one log line
    per session process."""
    os.makedirs(os.path.dirname(sb.db))
    r, p = smtp(sb, GOOD, ["EHLO client.example", "MAIL FROM:<a@exists.example>",
                           "RCPT TO:<%s>" % rcpt(sb), "RSET",
                           "MAIL FROM:<b@exists.example>", "RCPT TO:<%s>" % rcpt(sb)])
    assert r[3][0] == 250 and r[6][0] == 250, r
    with open(sb.db + ".db", "w") as f:
        f.write("not yours")
    os.chmod(sb.db + ".db", 0o600)  # root's: user= cannot open it
    r, p = smtp(sb, GOOD, ["EHLO client.example", "MAIL FROM:<a@exists.example>",
                           "RCPT TO:<%s>" % rcpt(sb), "RSET",
                           "MAIL FROM:<b@exists.example>", "RCPT TO:<%s>" % rcpt(sb)])
    assert r[3][0] == 250 and r[6][0] == 250, r
    # the daemon gives the file to user=, as when it takes over the original's
    started(sb)  # the file exists already: wait for its owner to change instead
    uid = pwd.getpwnam(sb.acc["spool"]).pw_uid
    deadline = time.time() + 10
    while os.stat(sb.db + ".db").st_uid != uid and time.time() < deadline:
        time.sleep(0.05)
    assert os.stat(sb.db + ".db").st_uid == uid


def test_default_path_made_at_start(sb):
    """greylist-db= in a directory that does not exist yet (as /var/db on a
    fresh system): the daemon makes the directory and the database."""
    assert not os.path.exists(os.path.dirname(sb.db))
    started(sb)
    assert os.path.isfile(sb.db + ".db")
    assert mail(sb, GOOD, data=False)[3][0] == 451


# ---- authexpire ----

def authexpire(sb, *args, tty=False):
    argv = [AUTHEXPIRE, "-C", sb.cf, *args]
    if tty:  # listing on a terminal: keys cut to 31 columns
        argv = ["script", "-qec", " ".join(argv), "/dev/null"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def fill(sb, now):
    day = 86400
    entries = {
        b"old@[203.0.113.7]\0": b"%d %d\0" % (now - 30 * day, now - 20 * day),
        b"fresh@[203.0.113.7]\0": b"%d %d\0" % (now - 2 * day, now - day),
        b"<>@[203.0.113.7]\0": b"%d %d\0" % (now - day, now - day),
        b"gaveup@[203.0.113.7]\0": b"%d %d\0" % (now - 2 * day, now - 3 * day),
        b"waiting@[203.0.113.7]\0": b"%d %d\0" % (now + 3600, now),
        b"banned@[203.0.113.7]\0": b"* %d\0" % (now - 30 * day),
        b"a-very-long-local-part-indeed-yes@[203.0.113.7]\0": b"%d %d\0" % (now, now),
    }
    with dbm.gnu.open(sb.db + ".db", "w") as db:
        for k, v in entries.items():
            db[k] = v


def keys(sb):
    return sorted(k.rstrip(b"\0").decode() for k in db_items(sb))


def test_authexpire_expiry(sb):
    started(sb)
    now = int(time.time())
    fill(sb, now)
    everything = keys(sb)
    r = authexpire(sb, "-n")  # dry run, 14 days
    assert r.returncode == 0, r.stderr
    assert r.stdout == "delete [old@[203.0.113.7]]\n"
    assert keys(sb) == everything
    r = authexpire(sb, "-v", "-u", "-z")
    assert r.returncode == 0, r.stderr
    gone = sorted(re.findall(r"delete \[(.*)\]", r.stdout))
    assert gone == ["<>@[203.0.113.7]", "gaveup@[203.0.113.7]", "old@[203.0.113.7]"], r.stdout
    assert r.stdout.endswith("7 records; expired 3.\n"), r.stdout
    assert "banned@[203.0.113.7]" in keys(sb)  # forbidden entries stay without -E
    r = authexpire(sb, "-E", "1w")
    assert r.returncode == 0 and "banned@[203.0.113.7]" not in keys(sb)
    r = authexpire(sb, "3600")  # a bare number is seconds
    assert r.returncode == 0 and keys(sb) == sorted(
        ["a-very-long-local-part-indeed-yes@[203.0.113.7]", "waiting@[203.0.113.7]"])
    for bad in ("59", "2x", "-1"):
        r = authexpire(sb, bad)
        assert r.returncode == 64 and r.stderr, (bad, r)


def test_authexpire_list_approve_forbid(sb):
    started(sb)
    now = int(time.time())
    fill(sb, now)
    r = authexpire(sb, "-l")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 7
    stamp = r"<\d\d:\d\d \d\d \w{3} \d{4}>"
    assert re.fullmatch(r"banned@\[203\.0\.113\.7\]\t\*\*\*\* forbidden \*\*\*\*  " + stamp,
                        lines[2]), lines
    assert re.fullmatch(r"fresh@\[203\.0\.113\.7\]\t%s #%s" % (stamp, stamp), lines[3]), lines
    assert re.fullmatch(r"waiting@\[203\.0\.113\.7\]\t%s  %s" % (stamp, stamp), lines[6]), lines
    assert lines[0].startswith("<>@[203.0.113.7]\t")
    # on a terminal the keys are cut to 31 columns, unless -w
    if subprocess.run(["which", "script"], capture_output=True).returncode == 0:
        cut = authexpire(sb, "-l", tty=True).stdout
        assert "a-very-long-local-part-indeed-y\t" in cut and "indeed-yes@" not in cut
        wide = authexpire(sb, "-l", "-w", tty=True).stdout
        assert "a-very-long-local-part-indeed-yes@[203.0.113.7]\t" in wide
    # -a approves: mail from that key goes through at once
    assert mail(sb, GOOD, sender="waiting@exists.example", data=False)[3][0] == 451
    r = authexpire(sb, "-a", "waiting@[203.0.113.7]")
    assert r.returncode == 0, r.stderr
    assert mail(sb, GOOD, sender="waiting@exists.example", data=False)[3][0] == 250
    # -d (and its old name -b) forbid; -a lifts it again
    for flag in ("-d", "-b"):
        assert authexpire(sb, flag, "fresh@[203.0.113.7]").returncode == 0
        assert db_items(sb)[b"fresh@[203.0.113.7]\0"].startswith(b"* ")
        r = mail(sb, GOOD, sender="fresh@exists.example", data=False)
        assert r[3][0] == 451 and "try again later" in r[3][1][0], r
        assert authexpire(sb, "-a", "fresh@[203.0.113.7]").returncode == 0
        assert mail(sb, GOOD, sender="fresh@exists.example", data=False)[3][0] == 250
    # a whole address, approved by hand, passes from any client
    assert authexpire(sb, "-a", "friend@exists.example").returncode == 0
    assert mail(sb, NOPTR, sender="friend@exists.example", data=False)[3][0] == 250


def test_authexpire_on_server_made_db(sb):
    started(sb)
    assert mail(sb, GOOD, data=False)[3][0] == 451
    assert mail(sb, NOPTR, sender="", data=False)[3][0] == 451
    r = authexpire(sb, "-l")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 2, r
    r = authexpire(sb, "-v", "-z")
    assert r.stdout == "delete [<>@[203.0.113.8]]\n2 records; expired 1.\n", r.stdout
    assert keys(sb) == ["a@[203.0.113.7]"]


def test_authexpire_missing_db(sb):
    r = authexpire(sb, "-l")
    assert r.returncode == 66 and "cannot open the greylist" in r.stderr, r
    # -a makes the database (for user=) when root runs it
    os.makedirs(os.path.dirname(sb.db))
    r = authexpire(sb, "-a", "x@[203.0.113.7]")
    assert r.returncode == 0, r.stderr
    assert os.stat(sb.db + ".db").st_uid == pwd.getpwnam(sb.acc["spool"]).pw_uid
    assert keys(sb) == ["x@[203.0.113.7]"]


# ---- build and install ----

def test_configure_with_greylist(tmp_path):
    """--with-greylist makes greylisting the default, --with-greylist-db= the
    database's name (configure.sh run on a copy of its inputs)."""
    root = os.path.join(HERE, "..", "..")
    for f in ("configure.sh", "Makefile.in", "VERSION"):
        shutil.copy(os.path.join(root, f), tmp_path / f)
    os.makedirs(tmp_path / "contrib")
    shutil.copy(os.path.join(root, "contrib", "postoffice.service.in"), tmp_path / "contrib")
    r = subprocess.run(["sh", "configure.sh", "--with-greylist",
                        "--with-greylist-db=/srv/grey/auth"], cwd=tmp_path,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    h = (tmp_path / "config.h").read_text()
    assert "#define GREYLIST_DEFAULT 1" in h and '#define PATH_GREYLIST "/srv/grey/auth"' in h
    r = subprocess.run(["sh", "configure.sh"], cwd=tmp_path, capture_output=True, text=True)
    h = (tmp_path / "config.h").read_text()
    assert "#define GREYLIST_DEFAULT 0" in h and '#define PATH_GREYLIST "/var/db/smtpauth"' in h


def test_installed(tmp_path):
    dest = str(tmp_path / "stage")
    root = os.path.join(HERE, "..", "..")
    r = subprocess.run(["make", "-s", "install", "DESTDIR=" + dest], cwd=root,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    files = [os.path.join(d, f) for d, _, fs in os.walk(dest) for f in fs]
    assert [f for f in files if f.endswith("/libexec/authexpire")], files
    names = {os.path.basename(f) for f in files}
    assert {"greylist.7", "smtpauth.5", "authexpire.8"} <= names
    r = subprocess.run(["make", "-s", "uninstall", "DESTDIR=" + dest], cwd=root,
                       capture_output=True, text=True)
    assert [os.path.join(d, f) for d, _, fs in os.walk(dest) for f in fs] == []


def test_default_database_path(sandbox, dns):
    """Without greylist-db= the database is /var/db/smtpauth.db, made (with
    /var/db) by the daemon for user=: shown in a private mount namespace whose
    /var is an empty tmpfs, so the host's /var is never touched."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare (util-linux) for a private mount namespace")
    sandbox.write_config(resolver=dns, dns_timeout=2, dns_tries=1, load=0, greylist=True,
                         delay=60)
    sandbox.port = port = __import__("conftest").free_port()
    sandbox.write_config(listen="127.0.0.1:%d" % port)
    spool = sandbox.acc["spool"]
    host_had_it = os.path.exists("/var/db")
    session = "EHLO c.example\r\nMAIL FROM:<a@exists.example>\r\nRCPT TO:<%s>\r\nQUIT\r\n" % rcpt(sandbox)
    script = """
set -e
mount -t tmpfs tmpfs /var
{po} -C {cf} -bD 2>{dir}/daemon.log &
for i in $(seq 100); do [ -f /var/db/smtpauth.db ] && break; sleep 0.05; done
stat -c '%U %a' /var/db/smtpauth.db /var/db
printf '{session}' | runuser -u {spool} -- {po} -C {cf} -bs -R 203.0.113.7
kill $!
""".format(po=os.path.join(sandbox.bin, "postoffice"), cf=sandbox.cf, dir=sandbox.dir,
           spool=spool, session=session.replace("\r\n", "\\r\\n"))
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, text=True, timeout=60)
    if "mount" in r.stderr and r.returncode:
        pytest.skip("cannot mount a tmpfs here: " + r.stderr.strip())
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "%s 600" % spool and out[1] == "root 755", r.stdout
    assert any(l.startswith("451 4.7.1 greylisted") for l in out), r.stdout
    assert os.path.exists("/var/db") == host_had_it  # the host's /var is untouched


def test_concurrent_sessions_and_authexpire(sb):
    """Twenty sessions at once, each making an entry, while authexpire lists,
    expires and approves in a loop: every entry is there afterwards, the file
    is a sound gdbm database, and nobody waited out the lock."""
    started(sb)
    procs = []
    script = "EHLO c.example\r\nMAIL FROM:<s{i}@exists.example>\r\nRCPT TO:<%s>\r\nQUIT\r\n" % rcpt(sb)
    pw = pwd.getpwnam(sb.acc["spool"])
    for i in range(20):
        p = subprocess.Popen(sb.cmd("postoffice", "-bs", "-R", GOOD), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        procs.append((p, script.format(i=i).encode()))
    housekeeping = [authexpire(sb, *a) for a in (["-l"], ["-v"], ["-a", "x@[203.0.113.9]"],
                                                 ["-u"], ["-l", "-w"], ["-z"])]
    outs = [p.communicate(s, timeout=60) for p, s in procs]
    assert all(h.returncode == 0 for h in housekeeping), [h.stderr for h in housekeeping]
    for out, _ in outs:
        assert b"\r\n451 4.7.1 greylisted" in out, out
    got = keys(sb)
    assert got == sorted(["s%d@[203.0.113.7]" % i for i in range(20)] + ["x@[203.0.113.9]"])
    assert authexpire(sb, "-v").stdout.endswith("21 records; expired 0.\n")
