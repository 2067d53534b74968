"""A raw SMTP client for the malformed cases smtplib cannot send, and small
helpers shared by the test_smtp_*.py files."""
import re
import socket

ENHANCED = re.compile(rb"^[245]\.\d{1,3}\.\d{1,3} ")


class Raw:
    """Bytes in, replies out: no cleverness, so tests control every byte."""

    def __init__(self, port, host="127.0.0.1", timeout=20):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.f = self.s.makefile("rb")

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)

    def reply(self):
        """One whole reply: (code, [text lines]); (None, []) at EOF."""
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                return (None, lines)
            assert line.endswith(b"\r\n"), line
            lines.append(line[4:-2])
            if line[3:4] == b" ":
                return (int(line[:3]), lines)
            assert line[3:4] == b"-", line

    def cmd(self, line):
        self.send(line + "\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.reply()

    def closed(self):
        """True if the server closed the connection (EOF on read)."""
        try:
            return self.f.readline() == b""
        except (ConnectionResetError, socket.timeout):
            return False

    def close(self):
        try:
            self.f.close()
            self.s.close()
        except OSError:
            pass


def has_code(lines, code):
    """Every line of a reply starts with an RFC 3463 code (and says something)."""
    return all(ENHANCED.match(l) and len(l) > 7 for l in lines)


def bs(sandbox, script, *args):
    """Run one -bs session with script (bytes) on stdin; return the replies as
    a list of (code, [lines])."""
    r = sandbox.run("postoffice", "-bs", *args, input=script)
    out = r.stdout.split(b"\r\n")
    replies, cur = [], []
    for line in out:
        if not line:
            continue
        cur.append(line[4:])
        if line[3:4] == b" ":
            replies.append((int(line[:3]), cur))
            cur = []
    return replies
