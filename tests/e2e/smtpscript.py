"""Scripted SMTP servers for the remote-delivery tests: they answer what the
test says, including hostile replies, stalls and dropped connections.

    srv = ScriptServer(rcpt=lambda a: b"550 5.1.1 no\\r\\n").start()
    ... srv.port, srv.commands (every line received), srv.messages (DATA bodies)

Each keyword is the raw bytes to send at that step (or a callable taking the
command argument and returning bytes); the special values STALL (say nothing,
keep the connection) and DROP (close it) are allowed everywhere.
"""
import socket
import threading

STALL = object()
DROP = object()

EHLO_DEFAULT = b"250-remote.test hello\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 0\r\n"


class ScriptServer:
    def __init__(self, host="127.0.0.1", port=0, greeting=b"220 remote.test ESMTP\r\n",
                 ehlo=EHLO_DEFAULT, helo=b"250 remote.test\r\n", mail=b"250 2.1.0 ok\r\n",
                 rcpt=b"250 2.1.5 ok\r\n", data=b"354 go ahead\r\n",
                 dot=b"250 2.0.0 queued\r\n", rset=b"250 ok\r\n", quit=b"221 bye\r\n"):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.steps = dict(greeting=greeting, ehlo=ehlo, helo=helo, mail=mail, rcpt=rcpt,
                          data=data, dot=dot, rset=rset, quit=quit)
        self.commands = []
        self.messages = []
        self.connections = 0
        self._stop = threading.Event()
        self._held = []

    def start(self):
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        return self

    def stop(self):
        self._stop.set()
        try:
            self.sock.close()
        except OSError:
            pass
        for c in self._held:
            try:
                c.close()
            except OSError:
                pass

    def _accept(self):
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._session, args=(c,), daemon=True).start()

    def _say(self, c, step, arg=""):
        v = self.steps[step]
        if callable(v):
            v = v(arg)
        if v is STALL:
            self._held.append(c)
            self._stop.wait(120)
            return False
        if v is DROP:
            c.close()
            return False
        c.sendall(v)
        return True

    def _session(self, c):
        f = c.makefile("rb")
        try:
            if not self._say(c, "greeting"):
                return
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line.rstrip(b"\r\n").decode("utf-8", "replace")
                self.commands.append(cmd)
                verb = cmd[:4].upper()
                arg = cmd[5:] if len(cmd) > 5 else ""
                if verb == "EHLO":
                    ok = self._say(c, "ehlo", arg)
                elif verb == "HELO":
                    ok = self._say(c, "helo", arg)
                elif verb == "MAIL":
                    ok = self._say(c, "mail", arg)
                elif verb == "RCPT":
                    ok = self._say(c, "rcpt", arg)
                elif verb == "RSET":
                    ok = self._say(c, "rset", arg)
                elif verb == "QUIT":
                    self._say(c, "quit", arg)
                    return
                elif verb == "DATA":
                    ok = self._say(c, "data", arg)
                    if ok and self._data_ok():
                        body = []
                        while True:
                            l = f.readline()
                            if not l:
                                return
                            if l == b".\r\n":
                                break
                            body.append(l)
                        self.messages.append(b"".join(body))
                        ok = self._say(c, "dot", arg)
                else:
                    ok = True
                    c.sendall(b"502 5.5.1 unknown\r\n")
                if not ok:
                    return
        except OSError:
            return
        finally:
            try:
                c.close()
            except OSError:
                pass

    def _data_ok(self):
        v = self.steps["data"]
        return not callable(v) and isinstance(v, bytes) and v.startswith(b"354")
