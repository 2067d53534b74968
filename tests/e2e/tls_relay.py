"""Relay hosts for the smarthost tests: aiosmtpd servers (not written by us)
that want STARTTLS or TLS from the first byte, and AUTH PLAIN/LOGIN; test
certificates made with the openssl command; a server whose STARTTLS handshake
is broken.  Also runnable as a program (in a network namespace):

    python3 tls_relay.py ADDR PORT OUTDIR [--tls CERT KEY]

serves SMTP on ADDR:PORT (STARTTLS offered when --tls is given), writes each
message it receives to OUTDIR/N.eml and a line per message to
OUTDIR/log ("tls" or "plain"), prints "ready" once listening.
"""
import asyncio
import os
import socket
import ssl
import subprocess
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d, name):
    """A self-signed CA (EC P-256) in d: returns (cert path, key path)."""
    key, crt = os.path.join(d, f"{name}.key"), os.path.join(d, f"{name}.crt")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    os.chmod(crt, 0o644)
    return crt, key


def make_cert(d, ca, name, sans, rsa=False):
    """A server certificate for sans (DNS names / IP:addresses) signed by ca:
    returns (cert path, key path)."""
    key, csr, crt = (os.path.join(d, f"{name}.{x}") for x in ("key", "csr", "crt"))
    newkey = ["-newkey", "rsa:2048"] if rsa else ["-newkey", "ec", "-pkeyopt",
                                                  "ec_paramgen_curve:P-256"]
    openssl("req", *newkey, "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={name}",
            cwd=d)
    ext = os.path.join(d, f"{name}.ext")
    alt = ",".join(s if s.startswith("IP:") else f"DNS:{s}" for s in sans)
    with open(ext, "w") as f:
        f.write(f"subjectAltName={alt}\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
            "-out", crt, "-days", "2", "-extfile", ext, cwd=d)
    return crt, key


def server_context(cert):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*cert)
    return ctx


class Handler:
    def __init__(self):
        self.messages = []  # (envelope, session.ssl is not None, authenticated)
        self.hangup = False  # close the connection after each message

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope, bool(session.ssl) or server.implicit,
                              session.authenticated))
        if self.hangup:
            asyncio.get_running_loop().call_soon(server.transport.close)
        return "250 2.0.0 OK queued"


class Relay:
    """An aiosmtpd relay on 127.0.0.1: STARTTLS required (starttls=CERT) or
    TLS from the first byte (implicit=CERT), AUTH required when users is a
    dict of login: password.  .messages, .auth (every attempt: (mechanism,
    login, password)), .port."""

    def __init__(self, port, starttls=None, implicit=None, users=None, auth_plaintext=False):
        self.handler = Handler()
        self.auth = []
        self.users = users
        kw = {}
        if starttls:
            kw.update(tls_context=server_context(starttls), require_starttls=True)
        if users is not None:
            kw.update(authenticator=self._check, auth_required=True,
                      auth_require_tls=not implicit and not auth_plaintext)
        self.port = port
        self.ctl = Controller(self.handler, hostname="127.0.0.1", port=port,
                              ssl_context=server_context(implicit) if implicit else None,
                              server_hostname="127.0.0.1", **kw)
        implicit_flag = bool(implicit)
        orig = self.ctl.factory

        def factory():
            s = orig()
            s.implicit = implicit_flag
            return s
        self.ctl.factory = factory

    def _check(self, server, session, envelope, mechanism, auth_data):
        login = auth_data.login.decode()
        password = auth_data.password.decode()
        self.auth.append((mechanism, login, password))
        ok = self.users is not None and self.users.get(login) == password
        return AuthResult(success=ok, handled=False)  # else no 535 is sent

    @property
    def messages(self):
        return self.handler.messages

    def start(self):
        self.ctl.start()
        return self

    def stop(self):
        self.ctl.stop()


class BrokenTLS:
    """Offers STARTTLS, answers it with 220 and then sends garbage instead of
    a handshake; otherwise a plain SMTP server that takes every message
    (.messages, .commands, .connections)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.messages, self.commands, self.connections = [], [], 0

    def start(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self):
        self.sock.close()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._session, args=(c,), daemon=True).start()

    def _session(self, c):
        f = c.makefile("rb")
        c.sendall(b"220 broken.test ESMTP\r\n")
        try:
            for line in f:
                cmd = line.rstrip(b"\r\n").decode()
                self.commands.append(cmd)
                verb = cmd[:4].upper()
                if verb == "EHLO":
                    c.sendall(b"250-broken.test\r\n250 STARTTLS\r\n")
                elif verb == "STAR":
                    c.sendall(b"220 go ahead\r\nthis is not a TLS handshake\r\n")
                    return
                elif verb == "DATA":
                    c.sendall(b"354 go\r\n")
                    body = []
                    for l in f:
                        if l == b".\r\n":
                            break
                        body.append(l)
                    self.messages.append(b"".join(body))
                    c.sendall(b"250 2.0.0 ok\r\n")
                elif verb == "QUIT":
                    c.sendall(b"221 bye\r\n")
                    return
                else:
                    c.sendall(b"250 ok\r\n")
        except OSError:
            pass
        finally:
            c.close()


class _FileHandler:
    def __init__(self, outdir):
        self.outdir = outdir
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        with open(os.path.join(self.outdir, f"{self.n}.eml"), "wb") as f:
            f.write(envelope.original_content)
        with open(os.path.join(self.outdir, "log"), "a") as f:
            f.write(("tls" if session.ssl else "plain") + "\n")
        return "250 2.0.0 OK queued"


def main(argv):
    addr, port, outdir = argv[1], int(argv[2]), argv[3]
    kw = {}
    if len(argv) > 4 and argv[4] == "--tls":
        kw = dict(tls_context=server_context((argv[5], argv[6])))
    ctl = Controller(_FileHandler(outdir), hostname=addr, port=port, **kw)
    ctl.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()  # until the test closes our stdin
    finally:
        ctl.stop()


if __name__ == "__main__":
    main(sys.argv)
