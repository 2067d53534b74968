"""SMTP AUTH (RFC 4954) and submission (RFC 6409) on the server, driven by
clients we did not write: swaks, python's smtplib, msmtp; passwd files made
by Apache's htpasswd and by mkpasswd for every hash type.

TLS is not in this branch yet, so most tests allow AUTH without it
(auth-plaintext); the TLS-only tests skip while the server offers no STARTTLS.
The daemon runs in the foreground and logs on stderr, which the tests read to
check what is logged (and that no password is)."""
import base64
import os
import shutil
import smtplib
import ssl
import subprocess
import time

import pytest

from conftest import IS_ROOT
from smtpclient import Raw, bs

VDOM = "one.example"
REMOTE = "203.0.113.7"  # TEST-NET-3: never one of our addresses
PW = "S3cret-pw 9"      # every user's password (distinctive: grepped for in the logs)

# user -> command that prints "user:hash"
HTPASSWD = {
    "des": ["htpasswd", "-nbd"],
    "apr1": ["htpasswd", "-nbm"],
    "bcrypt": ["htpasswd", "-nbB"],
    "sha256": ["htpasswd", "-nb2"],
    "sha512": ["htpasswd", "-nb5"],
}
MKPASSWD = {"yescrypt": "yescrypt", "mksha512": "sha512crypt", "mksha256": "sha256crypt",
            "mkmd5": "md5crypt", "mkbcrypt": "bcrypt"}

needs_root = pytest.mark.skipif(not IS_ROOT, reason="the AUTH helper runs as root; "
                                "run the tests as root")
needs_tools = pytest.mark.skipif(not (shutil.which("htpasswd") and shutil.which("mkpasswd")),
                                 reason="needs htpasswd (apache2-utils) and mkpasswd (whois)")
pytestmark = [needs_root, needs_tools]


def passwd_lines():
    lines = []
    for user, argv in HTPASSWD.items():
        out = subprocess.run(argv + [user, PW], capture_output=True, text=True, check=True)
        lines.append(out.stdout.strip())
    for user, method in MKPASSWD.items():
        out = subprocess.run(["mkpasswd", "-m", method, PW], capture_output=True, text=True,
                             check=True)
        lines.append("%s:%s" % (user, out.stdout.strip()))
    # refused formats: htpasswd -p (plaintext) and -s ({SHA})
    for user, flag in (("plain", "-nbp"), ("sha1", "-nbs")):
        out = subprocess.run(["htpasswd", flag, user, PW], capture_output=True, text=True,
                             check=True)
        lines.append(out.stdout.strip())
    return lines


@pytest.fixture
def sb(sandbox):
    vdir = os.path.join(sandbox.dir, "virtual")
    os.makedirs(os.path.join(vdir, VDOM))
    with open(os.path.join(vdir, "domains.cf"), "w") as f:
        f.write("# owner:domain:active\nroot:%s:1\nroot:off.example:0\n" % VDOM)
    lines = passwd_lines()
    with open(os.path.join(vdir, VDOM, "passwd"), "w") as f:
        f.write("# made by htpasswd and mkpasswd\n" + "\n".join(lines) + "\n")
    sandbox.vdir = vdir
    sandbox.passwd_lines = lines
    sandbox.write_config(load=0, virtual=vdir, auth_plaintext=True)
    return sandbox


def daemon(sb, **opts):
    if opts:
        sb.write_config(**opts)
    return sb.start_daemon()


def stop(sb, p):
    """Stop the daemon; its stderr log as text."""
    p.terminate()
    p.wait(timeout=20)
    return p.stderr.read().decode("utf-8", "replace")


def plain(user, pw=PW, authz=""):
    return base64.b64encode(("%s\0%s\0%s" % (authz, user, pw)).encode()).decode()


def b64(s):
    return base64.b64encode(s.encode()).decode()


def ehlo(c):
    code, lines = c.reply()
    assert code == 220
    code, lines = c.cmd("EHLO client.example")
    assert code == 250
    return lines


def test_every_hash_format_logs_in_with_smtplib(sb):
    p = daemon(sb)
    users = list(HTPASSWD) + list(MKPASSWD)
    for user in users:
        with smtplib.SMTP("127.0.0.1", sb.port, timeout=30) as s:
            s.ehlo("client.example")
            assert s.has_extn("auth") and "PLAIN" in s.esmtp_features["auth"].upper()
            code, _ = s.login("%s@%s" % (user, VDOM), PW)
            assert code == 235, user
    # a wrong password fails for a salted format and for DES (8 characters count)
    for user in ("bcrypt", "des"):
        with smtplib.SMTP("127.0.0.1", sb.port, timeout=30) as s:
            s.ehlo("client.example")
            with pytest.raises(smtplib.SMTPAuthenticationError) as e:
                s.login("%s@%s" % (user, VDOM), "X" + PW)
            assert e.value.smtp_code == 535
    log = stop(sb, p)
    for user in users:
        assert "user %s@%s authenticated" % (user, VDOM) in log, log


def test_plaintext_and_sha1_entries_refused_with_file_and_line(sb):
    p = daemon(sb)
    passwd = os.path.join(sb.vdir, VDOM, "passwd")
    for user in ("plain", "sha1"):
        c = Raw(sb.port)
        ehlo(c)
        code, lines = c.cmd("AUTH PLAIN " + plain("%s@%s" % (user, VDOM)))
        assert code == 535 and lines[0].startswith(b"5.7.8"), lines
        c.close()
    log = stop(sb, p)
    lineno = {l.split(":")[0]: i + 2 for i, l in enumerate(sb.passwd_lines)}
    assert "%s:%d: the password of plain@%s cannot be used: plaintext" % (
        passwd, lineno["plain"], VDOM) in log, log
    assert "%s:%d: the password of sha1@%s cannot be used: {SHA}" % (
        passwd, lineno["sha1"], VDOM) in log, log


@pytest.mark.skipif(not shutil.which("swaks"), reason="needs swaks")
@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_swaks_auth_relays_and_received_says_esmtpa(sb, mech):
    p = daemon(sb)
    u1 = sb.acc["u1"]
    r = subprocess.run(["swaks", "--server", "127.0.0.1", "--port", str(sb.port),
                        "--auth", mech, "--auth-user", "apr1@" + VDOM, "--auth-password", PW,
                        "--from", "apr1@" + VDOM, "--to", "%s@%s" % (u1, sb.hostname),
                        "--header", "Subject: swaks " + mech],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "235 2.7.0" in r.stdout
    if mech == "LOGIN":  # the challenges, exactly
        assert "334 VXNlcm5hbWU6" in r.stdout and "334 UGFzc3dvcmQ6" in r.stdout
    msgs = sb.wait_for_mail(u1)
    assert len(msgs) == 1
    received = msgs[0].get_all("Received")[0]
    assert "with ESMTPA" in received, received
    assert "apr1" not in received and PW not in received  # nothing secret, no user
    stop(sb, p)


@pytest.mark.skipif(not shutil.which("msmtp"), reason="needs msmtp")
def test_msmtp_sends_as_a_mail_client(sb):
    p = daemon(sb)
    u1 = sb.acc["u1"]
    rc = os.path.join(sb.dir, "msmtprc")
    with open(rc, "w") as f:
        f.write("account default\nhost 127.0.0.1\nport %d\nauth plain\nuser yescrypt@%s\n"
                "password %s\ntls off\nfrom yescrypt@%s\n" % (sb.port, VDOM, PW, VDOM))
    os.chmod(rc, 0o600)
    msg = "From: yescrypt@%s\nTo: %s@%s\nSubject: msmtp\n\nhello from msmtp\n" % (
        VDOM, u1, sb.hostname)
    r = subprocess.run(["msmtp", "-C", rc, "%s@%s" % (u1, sb.hostname)], input=msg,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    msgs = sb.wait_for_mail(u1)
    assert len(msgs) == 1 and msgs[0]["Subject"] == "msmtp"
    assert "ESMTPA" in msgs[0].get_all("Received")[0]
    stop(sb, p)


def test_not_offered_without_tls_unless_allowed(sb):
    p = daemon(sb, auth_plaintext=None)
    c = Raw(sb.port)
    lines = ehlo(c)
    assert not any(l.upper().startswith(b"AUTH") for l in lines), lines
    if any(l.upper() == b"STARTTLS" for l in lines):
        code, lines = c.cmd("AUTH PLAIN " + plain("apr1@" + VDOM))
        assert code == 538 and lines[0].startswith(b"5.7.11"), lines
    else:
        code, lines = c.cmd("AUTH PLAIN " + plain("apr1@" + VDOM))
        assert code in (502, 503, 538), lines
    c.close()
    stop(sb, p)


def test_warning_at_start_with_auth_plaintext(sb):
    p = daemon(sb)
    log = stop(sb, p)
    assert "auth-plaintext is set" in log, log


def test_auth_offered_after_starttls(sb):
    """Ready for the TLS branch: skipped while the server offers no STARTTLS."""
    cert, key = os.path.join(sb.dir, "cert.pem"), os.path.join(sb.dir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=" + sb.hostname],
                   capture_output=True, check=True)
    p = daemon(sb, auth_plaintext=None, tls_cert=cert, tls_key=key)
    try:
        with smtplib.SMTP("127.0.0.1", sb.port, timeout=30) as s:
            s.ehlo("client.example")
            if not s.has_extn("starttls"):
                pytest.skip("the server offers no STARTTLS yet (TLS is another branch)")
            assert not s.has_extn("auth")
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s.starttls(context=ctx)
            s.ehlo("client.example")
            assert s.has_extn("auth")
            assert s.login("sha512@" + VDOM, PW)[0] == 235
            s.sendmail("sha512@" + VDOM, ["%s@%s" % (sb.acc["u1"], sb.hostname)],
                       "Subject: tls\r\n\r\nhi\r\n")
        msgs = sb.wait_for_mail(sb.acc["u1"])
        assert "with ESMTPSA" in msgs[0].get_all("Received")[0]
    finally:
        stop(sb, p)


def test_brute_force_slowed_then_cut_off(sb):
    p = daemon(sb, auth_failures=3)
    c = Raw(sb.port, timeout=60)
    ehlo(c)
    took = []
    for i in range(2):
        t = time.monotonic()
        code, lines = c.cmd("AUTH PLAIN " + plain("bcrypt@" + VDOM, "wrong%d" % i))
        took.append(time.monotonic() - t)
        assert code == 535 and lines[0].startswith(b"5.7.8"), lines
    t = time.monotonic()
    code, lines = c.cmd("AUTH LOGIN " + b64("bcrypt@" + VDOM))
    assert code == 334
    code, lines = c.cmd(b64("wrong3"))
    took.append(time.monotonic() - t)
    assert code == 421 and lines[0].startswith(b"4.7.0"), lines
    assert c.closed()
    c.close()
    # 1 s, 2 s, 4 s: each at least its delay, and growing
    assert took[0] >= 0.9 and took[1] >= 1.9 and took[2] >= 3.9, took
    assert took[0] < took[1] < took[2], took
    log = stop(sb, p)
    # one reject line per failure (postoffice-log(5)), the last one the 421
    fails = [l for l in log.splitlines()
             if "reject cmd=AUTH" in l and "user=bcrypt@%s," % VDOM in l]
    assert len(fails) == 3, log
    assert "127.0.0.1" in log


def test_cancel_then_a_new_auth_succeeds(sb):
    p = daemon(sb)
    c = Raw(sb.port)
    ehlo(c)
    code, lines = c.cmd("AUTH LOGIN")
    assert (code, lines[0]) == (334, b"VXNlcm5hbWU6")
    code, lines = c.cmd("*")
    assert code == 501 and lines[0].startswith(b"5.7.0"), lines
    code, lines = c.cmd("AUTH PLAIN")
    assert code == 334
    code, lines = c.cmd("*")
    assert code == 501 and lines[0].startswith(b"5.7.0"), lines
    code, lines = c.cmd("AUTH PLAIN")
    assert code == 334
    code, lines = c.cmd(plain("sha256@" + VDOM))
    assert code == 235 and lines[0].startswith(b"2.7.0"), lines
    code, lines = c.cmd("AUTH PLAIN " + plain("sha256@" + VDOM))
    assert code == 503 and lines[0].startswith(b"5.5.1"), lines  # one per session
    c.close()
    stop(sb, p)


def test_dialogue_errors(sb):
    p = daemon(sb)
    c = Raw(sb.port)
    code, _ = c.reply()
    code, lines = c.cmd("AUTH PLAIN " + plain("apr1@" + VDOM))
    assert code == 503, lines  # EHLO first
    c.cmd("EHLO client.example")
    for line, want, esc in (
        ("AUTH CRAM-MD5", 504, b"5.5.4"),
        ("AUTH PLAIN !!!!", 501, b"5.5.2"),
        ("AUTH PLAIN Zm9v", 501, b"5.5.2"),        # "foo": no NULs
        ("AUTH PLAIN " + b64("\0only-user"), 501, b"5.5.2"),
        ("AUTH LOGIN =", 501, b"5.5.2"),            # empty user name
    ):
        code, lines = c.cmd(line)
        assert code == want and lines[0].startswith(esc), (line, code, lines)
    code, lines = c.cmd("AUTH LOGIN")
    code, lines = c.cmd("not base64 at all")
    assert code == 501 and lines[0].startswith(b"5.5.2"), lines
    # a response line may be 12288 bytes; longer is refused, then all is well
    code, lines = c.cmd("AUTH PLAIN")
    code, lines = c.cmd("A" * 12400)
    assert code == 500 and lines[0].startswith(b"5.5.6"), lines
    # AUTH= on MAIL (RFC 4954 5) is checked, and never makes an identity
    code, lines = c.cmd("MAIL FROM:<a@[203.0.113.1]> AUTH=<>")
    assert code == 250, lines
    code, lines = c.cmd("AUTH PLAIN " + plain("apr1@" + VDOM))
    assert code == 503 and b"transaction" in lines[0], lines
    c.cmd("RSET")
    code, lines = c.cmd("MAIL FROM:<a@[203.0.113.1]> AUTH=joe+40one.example")
    assert code == 250, lines
    c.cmd("RSET")
    code, lines = c.cmd("MAIL FROM:<a@[203.0.113.1]> AUTH=bad+zz")
    assert code == 501, lines
    # proxy authorisation (authzid of someone else) is refused
    code, lines = c.cmd("AUTH PLAIN " + plain("apr1@" + VDOM, authz="bcrypt@" + VDOM))
    assert code == 535, lines
    c.close()
    stop(sb, p)


def session(sb, lines, peer=REMOTE):
    script = ("\r\n".join(lines) + "\r\n").encode()
    return bs(sb, script, "-R", peer)


def test_relay_refused_before_auth_and_allowed_after(sb):
    sb.start_daemon()  # creates the queue directory the session checks
    before = session(sb, ["EHLO client.example", "MAIL FROM:<a@[203.0.113.1]>",
                          "RCPT TO:<victim@victim.example>", "QUIT"])
    assert before[3][0] == 554 and before[3][1][0].startswith(b"5.7.1"), before
    after = session(sb, ["EHLO client.example", "AUTH PLAIN " + plain("des@" + VDOM),
                         "MAIL FROM:<des@one.example>", "RCPT TO:<friend@victim.example>",
                         "QUIT"])
    assert after[2][0] == 235, after
    assert after[4][0] == 250, after
    wrong = session(sb, ["EHLO client.example", "AUTH PLAIN " + plain("des@" + VDOM, "nope"),
                         "MAIL FROM:<a@[203.0.113.1]>", "RCPT TO:<victim@victim.example>",
                         "QUIT"])
    assert wrong[2][0] == 535 and wrong[4][0] == 554, wrong


def test_submission_port_requires_auth(sb):
    from conftest import free_port
    msp = free_port()
    p = daemon(sb, msp=msp)
    u1 = "%s@%s" % (sb.acc["u1"], sb.hostname)
    c = Raw(msp)
    ehlo(c)
    code, lines = c.cmd("MAIL FROM:<mkmd5@one.example>")
    assert code == 530 and lines[0].startswith(b"5.7.0"), lines
    code, lines = c.cmd("AUTH PLAIN " + plain("mkmd5@" + VDOM))
    assert code == 235, lines
    assert c.cmd("MAIL FROM:<mkmd5@one.example>")[0] == 250
    assert c.cmd("RCPT TO:<%s>" % u1)[0] == 250
    c.close()
    # port 25 on loopback still takes mail without AUTH
    c = Raw(sb.port)
    ehlo(c)
    assert c.cmd("MAIL FROM:<a@[203.0.113.1]>")[0] == 250
    c.close()
    # smtplib: sendmail without login on 587 is refused with 530
    with smtplib.SMTP("127.0.0.1", msp, timeout=30) as s:
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            s.sendmail("x@one.example", [u1], "Subject: x\r\n\r\nx\r\n")
        assert e.value.smtp_code == 530
    stop(sb, p)


def test_sender_check(sb):
    p = daemon(sb, auth_sender_check=True)
    c = Raw(sb.port)
    ehlo(c)
    assert c.cmd("AUTH PLAIN " + plain("sha512@" + VDOM))[0] == 235
    code, lines = c.cmd("MAIL FROM:<someone.else@one.example>")
    assert code == 553 and lines[0].startswith(b"5.7.1"), lines
    assert c.cmd("MAIL FROM:<SHA512@One.Example>")[0] == 250
    c.close()
    stop(sb, p)


def test_password_never_in_the_log(sb):
    p = daemon(sb)
    secret = "Very-Distinct-Password-77"
    c = Raw(sb.port)
    ehlo(c)
    c.cmd("AUTH PLAIN " + plain("apr1@" + VDOM, secret))
    c.cmd("AUTH LOGIN " + b64("apr1@" + VDOM))
    c.cmd(b64(secret))
    c.close()
    c = Raw(sb.port)
    ehlo(c)
    c.cmd("AUTH PLAIN " + plain("apr1@" + VDOM))
    c.close()
    time.sleep(0.5)
    log = stop(sb, p)
    assert "user apr1@%s authenticated" % VDOM in log
    assert "reject cmd=AUTH" in log and "authentication credentials invalid" in log
    for s in (secret, PW, b64(secret), plain("apr1@" + VDOM, secret), plain("apr1@" + VDOM)):
        assert s not in log, s


def test_user_names_are_sanitised_in_the_log(sb):
    p = daemon(sb)
    c = Raw(sb.port)
    ehlo(c)
    code, _ = c.cmd("AUTH PLAIN " + plain("evil\x1b[31m\u00e9@" + VDOM))
    assert code == 501  # control bytes in a user name are refused outright
    code, _ = c.cmd("AUTH PLAIN " + plain("ev\u00e9l@" + VDOM))
    assert code == 535
    c.close()
    log = stop(sb, p)
    assert 'user="ev\\xC3\\xA9l@%s", code=535' % VDOM in log, log


LOCAL_USER = "poauth"


@pytest.fixture
def local_account():
    subprocess.run(["userdel", LOCAL_USER], capture_output=True)
    subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin",
                    LOCAL_USER], check=True)
    subprocess.run(["chpasswd"], input="%s:%s\n" % (LOCAL_USER, PW), text=True, check=True)
    yield LOCAL_USER
    subprocess.run(["userdel", LOCAL_USER], capture_output=True)


def test_local_user_only_with_auth_local(sb, local_account):
    p = daemon(sb)
    for name in (local_account, "%s@%s" % (local_account, sb.hostname)):
        c = Raw(sb.port)
        ehlo(c)
        code, lines = c.cmd("AUTH PLAIN " + plain(name))
        assert code == 535, (name, lines)  # auth-local is off
        c.close()
    stop(sb, p)
    sb.procs.clear()
    sb.write_config(auth_local=True)
    p = sb.start_daemon(port=sb.port)
    for name in (local_account, "%s@%s" % (local_account, sb.hostname)):
        with smtplib.SMTP("127.0.0.1", sb.port, timeout=30) as s:
            s.ehlo("client.example")
            assert s.login(name, PW)[0] == 235
    with smtplib.SMTP("127.0.0.1", sb.port, timeout=30) as s:
        s.ehlo("client.example")
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login("root", PW)  # never root, whatever its password
    # a local name in another domain is no local login
    c = Raw(sb.port)
    ehlo(c)
    assert c.cmd("AUTH PLAIN " + plain(local_account + "@elsewhere.example"))[0] == 535
    c.close()
    stop(sb, p)


def _pam_available():
    return os.path.exists("/usr/include/security/pam_appl.h")


@pytest.fixture(scope="module")
def pam_binary(tmp_path_factory):
    """postoffice built with --with-pam, in a copy of the tree."""
    if not _pam_available():
        pytest.skip("needs libpam0g-dev (./configure.sh --with-pam)")
    from conftest import ROOT
    d = tmp_path_factory.mktemp("pambuild")
    for name in ("src", "configure.sh", "Makefile.in", "VERSION", "man", "contrib"):
        src = os.path.join(ROOT, name)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(d, name),
                            ignore=shutil.ignore_patterns("*.o"))
        else:
            shutil.copy(src, d)
    r = subprocess.run(["sh", "configure.sh", "--with-pam", "--with-auth=passwd"], cwd=d,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(os.path.join(d, "config.h")) as f:
        h = f.read()
    assert "#define HAVE_PAM 1" in h and "#define AUTH_LOCAL_DEFAULT 1" in h
    r = subprocess.run(["nice", "make", "-j2", "postoffice"], cwd=d, capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return os.path.join(d, "postoffice")


def test_local_user_through_pam(sb, local_account, pam_binary):
    """--with-pam: local accounts through PAM (service "smtp"; this machine has
    no /etc/pam.d/smtp, so PAM's "other" service, pam_unix, answers);
    --with-auth=passwd made auth-local the default."""
    for p in sb.PERSONALITIES:
        os.unlink(os.path.join(sb.bin, p))
        os.symlink(pam_binary, os.path.join(sb.bin, p))
    p = daemon(sb)
    with smtplib.SMTP("127.0.0.1", sb.port, timeout=30) as s:
        s.ehlo("client.example")
        assert s.login(local_account, PW)[0] == 235
    with smtplib.SMTP("127.0.0.1", sb.port, timeout=30) as s:
        s.ehlo("client.example")
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login(local_account, PW + "x")
    # virtual users do not go through PAM
    with smtplib.SMTP("127.0.0.1", sb.port, timeout=30) as s:
        s.ehlo("client.example")
        assert s.login("bcrypt@" + VDOM, PW)[0] == 235
    log = stop(sb, p)
    assert "user %s authenticated" % local_account in log, log


def test_no_auth_in_an_ordinary_users_bs(sb):
    """-bs by an ordinary user has no privileged helper: no AUTH (root's has)."""
    sb.start_daemon()
    script = b"EHLO client.example\r\nAUTH PLAIN " + plain("apr1@" + VDOM).encode() + \
        b"\r\nQUIT\r\n"
    r = sb.run("postoffice", "-bs", input=script, user=sb.acc["u1"])
    assert b"AUTH PLAIN LOGIN" not in r.stdout, r.stdout
    assert b"\r\n502 5.5.1" in r.stdout, r.stdout
    root = bs(sb, script)
    assert root[2][0] == 235, root


def _auth_helpers(master_pid):
    """pids of the master's children titled "postoffice: auth"."""
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(master_pid)],
                         capture_output=True, text=True).stdout
    return [int(l.split()[0]) for l in out.splitlines() if l.split(None, 1)[1:] and
            l.split(None, 1)[1].strip() == "postoffice: auth"]


def _login_ok(sb):
    with smtplib.SMTP("127.0.0.1", sb.port, timeout=30) as s:
        s.ehlo("client.example")
        return s.login("apr1@" + VDOM, PW)[0] == 235


def _wait(cond, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def test_helper_replaced_on_sighup_and_restarted_after_a_crash(sb):
    import signal
    p = daemon(sb)
    assert _wait(lambda: len(_auth_helpers(p.pid)) == 1)
    first = _auth_helpers(p.pid)[0]
    assert _login_ok(sb)
    p.send_signal(signal.SIGHUP)
    # the new helper serves; the old one ends once no session holds its socket
    assert _wait(lambda: _auth_helpers(p.pid) and first not in _auth_helpers(p.pid)), \
        _auth_helpers(p.pid)
    assert len(_auth_helpers(p.pid)) == 1
    assert _login_ok(sb)
    second = _auth_helpers(p.pid)[0]
    time.sleep(1.2)  # a helper dying within a second of its start is not restarted
    os.kill(second, signal.SIGKILL)
    assert _wait(lambda: _auth_helpers(p.pid) and second not in _auth_helpers(p.pid))
    assert _login_ok(sb)  # the first session after the crash already has the new one
    log = stop(sb, p)
    assert "the AUTH helper ended (signal 9); starting another" in log, log


def test_submission_port_trusted_client_needs_no_auth(sb):
    from conftest import free_port
    msp = free_port()
    p = daemon(sb, msp=msp, trusted="[127.0.0.1]")
    c = Raw(msp)
    ehlo(c)
    assert c.cmd("MAIL FROM:<a@[203.0.113.1]>")[0] == 250
    c.close()
    stop(sb, p)


def test_safe_lets_authenticated_mail_skip_the_scanner(sb):
    """safe: an authenticated user's mail skips av= (and the mail filters);
    everyone else's is still scanned."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the scanner runs as user=")
    scanner = os.path.join(sb.dir, "flag-all")
    with open(scanner, "w") as f:
        f.write("#!/bin/sh\ncat >/dev/null\necho flagged by the test scanner\nexit 1\n")
    os.chmod(scanner, 0o755)
    user = sb.passwd_lines[0].split(":")[0] + "@" + VDOM
    to = "%s@%s" % (sb.acc["u1"], sb.hostname)
    msg = "Subject: safe\r\n\r\nbody\r\n"
    port = None
    for safe in (False, True):
        sb.write_config(av=scanner, safe=safe)
        p = sb.start_daemon(port=port)
        port = sb.port
        try:
            s = smtplib.SMTP("127.0.0.1", sb.port, timeout=30)
            s.login(user, PW)
            if safe:
                s.sendmail("a@elsewhere.example", [to], msg)
            else:
                with pytest.raises(smtplib.SMTPDataError) as e:
                    s.sendmail("a@elsewhere.example", [to], msg)
                assert e.value.smtp_code == 554
            s.quit()
            # a client that did not authenticate is scanned either way
            s = smtplib.SMTP("127.0.0.1", sb.port, timeout=30)
            with pytest.raises(smtplib.SMTPDataError):
                s.sendmail("a@elsewhere.example", [to], msg)
            s.quit()
        finally:
            stop(sb, p)
    sb.runq()  # whatever the daemon had not delivered before it stopped
    assert [m["Subject"] for m in sb.wait_for_mail(sb.acc["u1"])] == ["safe"]
