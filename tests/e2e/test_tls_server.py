"""The TLS server (issue 10): STARTTLS (RFC 3207) and smtps (implicit TLS),
certificates RSA and ECDSA with their chain, SNI certificates per virtual
domain, protocol limits, the plaintext-injection hole (CVE-2011-0411), session
resumption across session children (ticket keys of the master), Received:,
SIGHUP with a new certificate, start-up errors.  Clients we did not write:
swaks, openssl s_client, python smtplib/ssl, posttls-finger.  Certificates
are made by the test with openssl."""
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import free_port
from smtpclient import Raw
from procs import kids_named

HOST = "mx.test.example"


@pytest.fixture(autouse=True)
def _no_load_limit(sandbox):
    """The shared test machine is often loaded: load= would refuse us."""
    sandbox.write_config(load=0)


def openssl(*args, input=None):
    r = subprocess.run(["openssl", *args], capture_output=True, input=input, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return r


class Pki:
    """A root CA, an intermediate CA, and leaf certificates they sign."""

    def __init__(self, d):
        self.d = d
        os.makedirs(d, exist_ok=True)
        self.root_key, self.root = self._ca("root", "Test Root CA", None)
        self.int_key, self.int = self._ca("int", "Test Intermediate CA",
                                          (self.root, self.root_key))

    def path(self, name):
        return os.path.join(self.d, name)

    def _key(self, name, kind):
        key = self.path(name + ".key")
        if kind == "ecdsa":
            openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
        else:
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                    "-out", key)
        os.chmod(key, 0o600)  # readable by root only: the master reads it
        return key

    def _ca(self, name, cn, issuer):
        key = self._key(name, "ecdsa")
        crt = self.path(name + ".crt")
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
                    "subjectKeyIdentifier=hash\n")
        if issuer is None:
            openssl("req", "-x509", "-new", "-key", key, "-out", crt, "-days", "3",
                    "-subj", "/CN=" + cn, "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        else:
            csr = self.path(name + ".csr")
            openssl("req", "-new", "-key", key, "-out", csr, "-subj", "/CN=" + cn)
            openssl("x509", "-req", "-in", csr, "-CA", issuer[0], "-CAkey", issuer[1],
                    "-CAcreateserial", "-out", crt, "-days", "3", "-extfile", ext)
        return key, crt

    def leaf(self, name, cn, kind="rsa", sans=None):
        """(chain file: leaf + intermediate, key file)."""
        key = self._key(name, kind)
        csr = self.path(name + ".csr")
        crt = self.path(name + ".crt")
        ext = self.path(name + ".ext")
        # and the loopback address, which smtplib checks (it connects by it)
        names = ",".join(["DNS:" + n for n in (sans or [cn])] + ["IP:127.0.0.1"])
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\nsubjectAltName=%s\n"
                    "extendedKeyUsage=serverAuth\n" % names)
        openssl("req", "-new", "-key", key, "-out", csr, "-subj", "/CN=" + cn)
        openssl("x509", "-req", "-in", csr, "-CA", self.int, "-CAkey", self.int_key,
                "-CAcreateserial", "-out", crt, "-days", "3", "-extfile", ext)
        chain = self.path(name + ".chain.pem")
        with open(chain, "w") as f:
            f.write(open(crt).read() + open(self.int).read())
        return chain, key


@pytest.fixture
def pki(sandbox):
    return Pki(os.path.join(sandbox.dir, "pki"))


def tls_config(sandbox, pki, both=True, **more):
    rsa = pki.leaf("rsa", HOST)
    certs, keys = [rsa[0]], [rsa[1]]
    if both:
        ec = pki.leaf("ec", HOST, kind="ecdsa")
        certs.append(ec[0])
        keys.append(ec[1])
    sandbox.write_config(tls_cert=certs, tls_key=keys, **more)
    return certs, keys


def daemon_log(sandbox, p):
    """Stop the daemon and return what it logged on stderr."""
    p.terminate()
    p.wait(timeout=10)
    return p.stderr.read().decode(errors="replace")


def s_client(port, *args, starttls=True, input=b"QUIT\r\n", delay=0.5):
    """openssl s_client; input is sent after delay (the handshake first)."""
    argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-ign_eof"]
    if starttls:
        argv += ["-starttls", "smtp"]
    p = subprocess.Popen(argv + list(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    time.sleep(delay)
    try:
        out, _ = p.communicate(input, timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    return out.decode(errors="replace")


def user_addr(sandbox):
    return "%s@%s" % (sandbox.acc["u1"], HOST)


def swaks(sandbox, port, *args, subject="tls test"):
    r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % port, "--helo", "client.example",
                        "--from", "sender@client.example", "--to", user_addr(sandbox),
                        "--header", "Subject: " + subject, *args],
                       capture_output=True, timeout=60)
    return r.returncode, r.stdout.decode(errors="replace")


def received_of(msg):
    return " ".join(msg.get_all("Received")[0].split())


# ---- STARTTLS and smtps with real clients ----

def test_swaks_starttls_delivers_and_records_tls(sandbox, pki):
    tls_config(sandbox, pki)
    sandbox.start_daemon()
    rc, out = swaks(sandbox, sandbox.port, "--tls", subject="over starttls")
    assert rc == 0, out
    assert "STARTTLS" in out and "TLS started" in out, out
    msgs = sandbox.wait_for_mail(sandbox.acc["u1"])
    assert len(msgs) == 1 and msgs[0]["Subject"] == "over starttls"
    rec = received_of(msgs[0])
    assert "(using TLSv1.3 with cipher TLS_" in rec, rec
    assert " bits)" in rec and "with ESMTPS id" in rec, rec


def test_ehlo_offers_starttls_only_with_a_certificate(sandbox, pki):
    sandbox.start_daemon()
    c = Raw(sandbox.port)
    c.reply()
    code, lines = c.cmd("EHLO client.example")
    assert code == 250 and b"STARTTLS" not in lines
    code, lines = c.cmd("STARTTLS")
    assert code == 502 and lines[0].startswith(b"5.5.1"), lines
    c.close()


def test_swaks_smtps_implicit_tls(sandbox, pki):
    port = free_port()
    tls_config(sandbox, pki, smtps=port)
    sandbox.start_daemon()
    # a submission port: MAIL needs AUTH (or trusted=) there
    rc, out = swaks(sandbox, port, "--tlsc", subject="refused")
    assert rc != 0 and "530 5.7.0" in out, out
    sandbox.write_config(trusted="127.0.0.1")
    os.kill(sandbox.procs[-1].pid, signal.SIGHUP)
    time.sleep(1)
    rc, out = swaks(sandbox, port, "--tlsc", subject="over smtps")
    assert rc == 0, out
    assert "TLS started" in out
    # under TLS from the first byte: no STARTTLS offered again
    assert "250-STARTTLS" not in out and "250 STARTTLS" not in out
    msgs = sandbox.wait_for_mail(sandbox.acc["u1"])
    assert msgs and msgs[0]["Subject"] == "over smtps"
    assert "with ESMTPS" in received_of(msgs[0])


def test_smtps_greets_only_after_the_handshake(sandbox, pki):
    port = free_port()
    tls_config(sandbox, pki, smtps=port)
    sandbox.start_daemon()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.settimeout(1.5)
    with pytest.raises(socket.timeout):
        s.recv(100)  # a plaintext client hears nothing: TLS comes first
    s.close()


def test_s_client_rsa_and_ecdsa_chain_verified(sandbox, pki):
    tls_config(sandbox, pki)
    sandbox.start_daemon()
    common = ["-CAfile", pki.root, "-verify_return_error", "-verify_hostname", HOST,
              "-showcerts"]
    out = s_client(sandbox.port, "-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256", *common)
    assert "Verify return code: 0 (ok)" in out, out
    assert "Cipher is ECDHE-RSA-AES128-GCM-SHA256" in out and "Protocol  : TLSv1.2" in out
    # the chain came from the server: the client trusts only the root
    assert "i:CN = Test Intermediate CA" in out and "s:CN = Test Intermediate CA" in out, out
    out = s_client(sandbox.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384", *common)
    assert "Verify return code: 0 (ok)" in out, out
    assert "Cipher is ECDHE-ECDSA-AES256-GCM-SHA384" in out
    out = s_client(sandbox.port, "-tls1_3", *common)
    assert "Verify return code: 0 (ok)" in out and "New, TLSv1.3" in out, out


def test_old_protocols_refused_by_default(sandbox, pki):
    tls_config(sandbox, pki)
    p = sandbox.start_daemon()
    for v in ("-tls1", "-tls1_1"):
        # the client allows them (SECLEVEL 0): the refusal is the server's
        out = s_client(sandbox.port, v, "-cipher", "DEFAULT@SECLEVEL=0")
        assert "alert protocol version" in out, out
    log = daemon_log(sandbox, p)
    assert log.count("TLS handshake with 127.0.0.1 failed: unsupported protocol") == 2, log


def test_tls_protocols_option(sandbox, pki):
    tls_config(sandbox, pki, tls_protocols="TLSv1.3")
    sandbox.start_daemon()
    assert "alert protocol version" in s_client(sandbox.port, "-tls1_2")
    assert "New, TLSv1.3" in s_client(sandbox.port, "-tls1_3")


def test_python_smtplib_starttls(sandbox, pki):
    tls_config(sandbox, pki)
    sandbox.start_daemon()
    ctx = ssl.create_default_context(cafile=pki.root)
    with smtplib.SMTP("127.0.0.1", sandbox.port, timeout=20) as s:
        s.ehlo("client.example")
        assert s.has_extn("starttls")
        code, _ = s.starttls(context=ctx)
        assert code == 220
        s.ehlo("client.example")
        assert not s.has_extn("starttls")  # not offered twice
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3")
        s.sendmail("sender@client.example", [user_addr(sandbox)],
                   "Subject: smtplib\r\n\r\nhello over TLS\r\n")
    msgs = sandbox.wait_for_mail(sandbox.acc["u1"])
    assert msgs and msgs[0]["Subject"] == "smtplib"
    assert "hello over TLS" in msgs[0].get_payload()
    assert "with ESMTPS" in received_of(msgs[0])


def test_posttls_finger_verifies(sandbox, pki):
    if not shutil.which("posttls-finger"):
        pytest.skip("posttls-finger is missing: it comes with the postfix package, which "
                    "conflicts with the MTA the test dependencies pull in; not installed "
                    "by bootstrap.sh")
    tls_config(sandbox, pki)
    sandbox.start_daemon()
    conf = os.path.join(sandbox.dir, "pfconf")
    os.makedirs(conf)
    open(os.path.join(conf, "main.cf"), "w").close()
    r = subprocess.run(["posttls-finger", "-c", "-l", "secure", "-F", pki.root,
                        "[127.0.0.1]:%d" % sandbox.port, HOST],
                       capture_output=True, timeout=60,
                       env=dict(os.environ, MAIL_CONFIG=conf))
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert "Verified TLS connection established to 127.0.0.1" in out, out
    assert "TLSv1.3 with cipher" in out, out


# ---- the command itself ----

def starttls_raw(c, ctx=None, name=HOST):
    ctx = ctx or ssl._create_unverified_context()
    c.s = ctx.wrap_socket(c.s, server_hostname=name)
    c.f = c.s.makefile("rb")
    return c


def test_plaintext_pipelined_behind_starttls_is_discarded(sandbox, pki):
    tls_config(sandbox, pki)
    sandbox.start_daemon()
    c = Raw(sandbox.port)
    c.reply()
    c.cmd("EHLO client.example")
    c.send("STARTTLS\r\nRSET\r\n")  # one write: RSET rides behind STARTTLS
    code, lines = c.reply()
    assert code == 220
    starttls_raw(c)
    # the first reply under TLS answers NOOP: the RSET was never executed
    code, lines = c.cmd("NOOP")
    assert (code, lines) == (250, [b"2.0.0 OK"]), lines
    c.close()


def test_session_starts_over_after_starttls(sandbox, pki):
    tls_config(sandbox, pki)
    sandbox.start_daemon()
    c = Raw(sandbox.port)
    c.reply()
    c.cmd("EHLO client.example")
    assert c.cmd("STARTTLS")[0] == 220
    starttls_raw(c)
    code, lines = c.cmd("MAIL FROM:<a@client.example>")
    assert code == 503 and b"HELO or EHLO first" in lines[0], lines  # RFC 3207 4.2
    code, lines = c.cmd("EHLO client.example")
    assert code == 250 and b"STARTTLS" not in lines
    code, lines = c.cmd("STARTTLS")
    assert code == 503 and lines[0].startswith(b"5.5.1"), lines  # already active
    c.close()


def test_starttls_argument_and_transaction(sandbox, pki):
    tls_config(sandbox, pki)
    sandbox.start_daemon()
    c = Raw(sandbox.port)
    c.reply()
    c.cmd("EHLO client.example")
    code, lines = c.cmd("STARTTLS now")
    assert code == 501 and lines[0].startswith(b"5.5.4"), lines
    assert c.cmd("MAIL FROM:<a@client.example>")[0] == 250
    code, lines = c.cmd("STARTTLS")
    assert code == 503, lines
    assert c.cmd("RSET")[0] == 250
    assert c.cmd("STARTTLS")[0] == 220
    starttls_raw(c)
    assert c.cmd("EHLO client.example")[0] == 250
    c.close()


def ended(sock):
    """The server closed the connection (perhaps after an alert, perhaps with
    a reset because our garbage was still unread)."""
    try:
        while sock.recv(4096):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_failed_handshake_logged_and_closed(sandbox, pki):
    tls_config(sandbox, pki)
    p = sandbox.start_daemon()
    c = Raw(sandbox.port)
    c.reply()
    c.cmd("EHLO client.example")
    assert c.cmd("STARTTLS")[0] == 220
    c.send(b"this is not a TLS client hello\r\n" * 4)
    assert ended(c.s)
    c.close()
    log = daemon_log(sandbox, p)
    assert "TLS handshake with 127.0.0.1 failed:" in log, log


def test_handshake_deadline(sandbox, pki):
    port = free_port()
    tls_config(sandbox, pki, smtps=port, tls_handshake_timeout="2s", timeout=300)
    sandbox.start_daemon()
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    t0 = time.time()
    assert s.recv(100) == b""  # closed without a word: the handshake never came
    took = time.time() - t0
    assert 1.5 < took < 10, took
    s.close()


# ---- SNI ----

def test_sni_picks_the_domains_certificate(sandbox, pki):
    tls_config(sandbox, pki)
    vdir = os.path.join(sandbox.dir, "virtual")
    one = os.path.join(vdir, "one.example")
    os.makedirs(one)
    os.makedirs(os.path.join(vdir, "nocert.example"))
    crt, key = pki.leaf("one", "mail.one.example", sans=["one.example", "mail.one.example"])
    shutil.copy(crt, os.path.join(one, "tls.crt"))
    shutil.copy(key, os.path.join(one, "tls.key"))
    sandbox.write_config(vhostdir=vdir)
    sandbox.start_daemon()
    v = ["-CAfile", pki.root, "-verify_return_error"]
    for name in ("one.example", "mail.one.example", "MAIL.One.Example"):
        out = s_client(sandbox.port, "-servername", name, "-verify_hostname", name.lower(), *v)
        assert "subject=CN = mail.one.example" in out, (name, out)
        assert "Verify return code: 0 (ok)" in out
    for name in ("nocert.example", "other.example"):
        out = s_client(sandbox.port, "-servername", name, *v)
        assert "subject=CN = %s" % HOST in out, (name, out)
    out = s_client(sandbox.port, "-noservername", *v)
    assert "subject=CN = %s" % HOST in out, out


# ---- resumption ----

def resumed(port, sess, *args):
    """Two connections: the second offers the first's session."""
    if os.path.exists(sess):
        os.unlink(sess)
    first = s_client(port, "-sess_out", sess, *args)
    assert "New, TLSv1." in first, first
    return s_client(port, "-sess_in", sess, *args)


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_resumption_across_session_children(sandbox, pki, version):
    tls_config(sandbox, pki)
    p = sandbox.start_daemon()
    sess = os.path.join(sandbox.dir, "sess.pem")
    out = resumed(sandbox.port, sess, version)
    assert "Reused, TLSv1." in out, out
    # a SIGHUP rebuilds the contexts but keeps the ticket keys
    s_client(sandbox.port, "-sess_out", sess, version)
    os.kill(p.pid, signal.SIGHUP)
    time.sleep(1)
    out = s_client(sandbox.port, "-sess_in", sess, version)
    assert "Reused, TLSv1." in out, out
    log = daemon_log(sandbox, p)
    assert "(session resumed)" in log


def test_tickets_of_another_server_are_not_accepted(sandbox, pki):
    tls_config(sandbox, pki)
    p = sandbox.start_daemon()
    sess = os.path.join(sandbox.dir, "sess.pem")
    s_client(sandbox.port, "-sess_out", sess, "-tls1_2")
    p.terminate()
    p.wait(timeout=10)
    sandbox.start_daemon(port=sandbox.port)  # new master, new keys
    out = s_client(sandbox.port, "-sess_in", sess, "-tls1_2")
    assert "New, TLSv1.2" in out, out


# ---- reloading and start-up errors ----

def test_sighup_reads_a_replaced_certificate(sandbox, pki):
    certs, keys = tls_config(sandbox, pki, both=False)
    p = sandbox.start_daemon()
    assert "subject=CN = %s" % HOST in s_client(sandbox.port)
    crt, key = pki.leaf("new", "renewed.test.example")
    shutil.copy(crt, certs[0])
    shutil.copy(key, keys[0])
    os.kill(p.pid, signal.SIGHUP)
    deadline = time.time() + 20
    while "subject=CN = renewed.test.example" not in s_client(sandbox.port):
        assert time.time() < deadline, "the new certificate never came"
    # a broken replacement: the running certificate stays, the log says why
    with open(certs[0], "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    os.kill(p.pid, signal.SIGHUP)
    time.sleep(1)
    assert "subject=CN = renewed.test.example" in s_client(sandbox.port)
    log = daemon_log(sandbox, p)
    assert "SIGHUP: keeping the TLS certificates in use: tls-cert=%s" % certs[0] in log, log


def start_fails(sandbox):
    r = sandbox.run("postoffice", "-bD", timeout=30)
    return r.returncode, r.stderr.decode(errors="replace")


def test_missing_certificate_is_a_config_error(sandbox, pki):
    missing = os.path.join(sandbox.dir, "nowhere.pem")
    _, key = pki.leaf("k", HOST)
    sandbox.write_config(listen="127.0.0.1:%d" % free_port(), tls_cert=missing, tls_key=key)
    rc, err = start_fails(sandbox)
    assert rc == 78, err  # EX_CONFIG
    assert "tls-cert=%s: No such file or directory" % missing in err, err


def test_key_not_matching_is_a_config_error(sandbox, pki):
    crt, _ = pki.leaf("a", HOST)
    _, other = pki.leaf("b", HOST)
    sandbox.write_config(listen="127.0.0.1:%d" % free_port(), tls_cert=crt, tls_key=other)
    rc, err = start_fails(sandbox)
    assert rc == 78, err
    assert "tls-key=%s: not a usable private key for the certificate %s: key values mismatch" % (
        other, crt) in err, err


def test_bad_settings_are_config_errors(sandbox, pki):
    crt, key = pki.leaf("a", HOST)
    port = "127.0.0.1:%d" % free_port()
    for opts, want in (({"tls_protocols": "TLSv1.2,SSLv3"}, 'unknown version "SSLv3"'),
                       ({"tls_protocols": "TLSv1.1,TLSv1.3"}, "a gap between versions"),
                       ({"tls_ciphers": "NOSUCHCIPHER"}, "tls-ciphers=NOSUCHCIPHER"),
                       ({"tls_ciphersuites": "TLS_NOPE"}, "tls-ciphersuites=TLS_NOPE"),
                       ({"tls_key": [key, key]}, "1 tls-cert= but 2 tls-key=")):
        for k in ("tls_key", "tls_protocols", "tls_ciphers", "tls_ciphersuites"):
            sandbox.options.pop(k, None)
        settings = dict(listen=port, tls_cert=crt, tls_key=key)
        settings.update(opts)
        sandbox.write_config(**settings)
        rc, err = start_fails(sandbox)
        assert rc == 78 and want in err, (opts, err)


def test_smtps_needs_a_certificate(sandbox):
    sandbox.write_config(listen="127.0.0.1:%d" % free_port(), smtps=free_port())
    rc, err = start_fails(sandbox)
    assert rc == 78 and "smtps=" in err and "tls-cert=" in err, err


def test_domain_cert_without_key_is_a_config_error(sandbox, pki):
    tls_config(sandbox, pki, both=False)
    vdir = os.path.join(sandbox.dir, "virtual")
    os.makedirs(os.path.join(vdir, "two.example"))
    crt, _ = pki.leaf("two", "two.example")
    shutil.copy(crt, os.path.join(vdir, "two.example", "tls.crt"))
    sandbox.write_config(vhostdir=vdir, listen="127.0.0.1:%d" % free_port())
    rc, err = start_fails(sandbox)
    assert rc == 78, err
    assert os.path.join(vdir, "two.example", "tls.key") + ": No such file" in err, err


def test_session_child_cannot_read_the_key(sandbox, pki):
    if os.geteuid() != 0:
        pytest.skip("needs root: the key must be readable by root only")
    certs, keys = tls_config(sandbox, pki, both=False)
    assert os.stat(keys[0]).st_mode & 0o077 == 0
    sandbox.start_daemon()
    # the session (user=) serves TLS with a key only root can read
    r = subprocess.run(["runuser", "-u", sandbox.acc["spool"], "--", "cat", keys[0]],
                       capture_output=True)
    assert r.returncode != 0
    out = s_client(sandbox.port, "-CAfile", pki.root, "-verify_return_error")
    assert "Verify return code: 0 (ok)" in out, out


def ec_private_scalar(keyfile):
    """The EC private key as OpenSSL holds it in memory: a BIGNUM's limbs,
    least significant byte first."""
    out = openssl("ec", "-in", keyfile, "-text", "-noout").stdout.decode()
    hexpart = out.split("priv:")[1].split("pub:")[0]
    raw = bytes.fromhex("".join(hexpart.split()).replace(":", ""))
    raw = raw[-32:].rjust(32, b"\0")
    return raw[::-1]


def memory_holds(pid, needle):
    with open("/proc/%d/maps" % pid) as f:
        regions = [l.split() for l in f]
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for r in regions:
            if "rw" not in r[1] or (len(r) > 5 and r[5].startswith("[v")):
                continue
            start, end = (int(x, 16) for x in r[0].split("-"))
            if end - start > 1 << 30:
                continue  # an ASan shadow reservation, not data
            # in chunks that overlap by the needle's length
            step = 4 << 20
            for off in range(start, end, step):
                try:
                    mem.seek(off)
                    if needle in mem.read(min(step + len(needle), end - off)):
                        return True
                except OSError:
                    break
    return False


def test_only_the_tls_proxy_holds_the_private_key(sandbox, pki):
    """The TLS proxy (po-tls, running as user=) is the one process with the
    private key in memory: not the master, not a session under TLS, not a
    delivery worker."""
    if os.geteuid() != 0:
        pytest.skip("needs root to read other processes' memory")
    crt, key = pki.leaf("ec", HOST, kind="ecdsa")
    sandbox.write_config(tls_cert=crt, tls_key=key, immediate=True)
    p = sandbox.start_daemon()
    needle = ec_private_scalar(key)
    # a message, so that a delivery worker is started (and stays)
    rc, out = swaks(sandbox, sandbox.port, "--tls", subject="worker")
    assert rc == 0, out
    assert sandbox.wait_for_mail(sandbox.acc["u1"])
    c = Raw(sandbox.port)  # a session under TLS, idle
    c.reply()
    c.cmd("EHLO client.example")
    assert c.cmd("STARTTLS")[0] == 220
    starttls_raw(c)
    assert c.cmd("EHLO client.example")[0] == 250
    proxies = kids_named(p.pid, "po-tls")
    sessions = kids_named(p.pid, "po-session")
    workers = kids_named(p.pid, "po-deliver")
    assert len(proxies) == 1 and sessions and workers, (proxies, sessions, workers)
    with open("/proc/%d/status" % proxies[0]) as f:
        uids = [l.split()[1:] for l in f if l.startswith("Uid:")][0]
    assert "0" not in uids, "the TLS proxy runs as root: %s" % uids
    # the probe can fail: the proxy (which must have it) shows it
    assert memory_holds(proxies[0], needle)
    for pid, what in [(p.pid, "the master")] + [(s, "a session") for s in sessions] + \
            [(w, "a delivery worker") for w in workers]:
        assert not memory_holds(pid, needle), "%s (%d) holds the TLS key" % (what, pid)
    c.close()


def test_smtps_auth_submission(sandbox, pki):
    """The smtps port is a submission port: AUTH under TLS from the first
    byte, then mail; Received: says ESMTPSA."""
    if os.geteuid() != 0 or not shutil.which("htpasswd"):
        pytest.skip("needs root (the AUTH helper) and htpasswd (apache2-utils)")
    vdir = os.path.join(sandbox.dir, "virtual")
    os.makedirs(os.path.join(vdir, "one.example"), exist_ok=True)
    with open(os.path.join(vdir, "domains.cf"), "w") as f:
        f.write("root:one.example:1\n")
    line = subprocess.run(["htpasswd", "-nbB", "joe", "pw-for-joe"], capture_output=True,
                          text=True, check=True).stdout.strip()
    with open(os.path.join(vdir, "one.example", "passwd"), "w") as f:
        f.write(line + "\n")
    port = free_port()
    tls_config(sandbox, pki, smtps=port, vhostdir=vdir)
    sandbox.start_daemon()
    ctx = ssl.create_default_context(cafile=pki.root)
    with smtplib.SMTP_SSL("127.0.0.1", port, context=ctx, timeout=30) as s:
        s.ehlo("client.example")
        assert s.has_extn("auth") and not s.has_extn("starttls")
        assert s.login("joe@one.example", "pw-for-joe")[0] == 235
        s.sendmail("joe@one.example", [user_addr(sandbox)], "Subject: submitted\r\n\r\nhi\r\n")
    msgs = sandbox.wait_for_mail(sandbox.acc["u1"])
    assert msgs and msgs[0]["Subject"] == "submitted"
    rec = received_of(msgs[0])
    assert "with ESMTPSA" in rec and "(using TLSv1.3 with cipher" in rec, rec
    assert "joe" not in rec and "pw-for-joe" not in rec
