"""SMTP smuggling (CVE-2023-51764 and friends): no end-of-data
variant but CR LF . CR LF ends a message; bare CR/LF messages are refused
after the real end; dot-stuffing and lone dots are handled."""
import os

import pytest

from smtpclient import Raw

# the published end-of-data variants (bare LF, bare CR, NUL), and a few neighbours
SEQUENCES = [
    b"\n.\n",        # LF . LF
    b"\n.\r\n",      # LF . CR LF
    b"\r\n.\n",      # CR LF . LF
    b"\r.\r",        # CR . CR
    b"\r.\r\n",      # CR . CR LF
    b"\r\n.\r",      # CR LF . CR
    b"\n..\n",
    b"\r\n.\r\r\n",
]


@pytest.fixture(autouse=True)
def _no_load_limit(sandbox):
    """The shared test machine is often loaded: load= would refuse us."""
    sandbox.write_config(load=0)


@pytest.fixture
def daemon(sandbox):
    sandbox.start_daemon()
    return sandbox


def start_data(c, sb):
    c.reply()
    assert c.cmd("EHLO client.example")[0] == 250
    assert c.cmd("MAIL FROM:<a@x.example>")[0] == 250
    assert c.cmd("RCPT TO:<%s@%s>" % (sb.acc["u1"], sb.hostname))[0] == 250
    assert c.cmd("DATA")[0] == 354


def queued_evil(sb):
    """Any queued or delivered message that carries the smuggled subject."""
    for data, _ in sb.queued().values():
        if b"smuggled" in data:
            return True
    return any("smuggled" in str(m["Subject"]) for m in sb.mbox(sb.acc["u1"]))


@pytest.mark.parametrize("seq", SEQUENCES, ids=[repr(s) for s in SEQUENCES])
def test_smuggling_sequence_never_ends_data(daemon, seq):
    c = Raw(daemon.port)
    start_data(c, daemon)
    smuggled = (b"MAIL FROM:<spoof@bank.example>\r\nRCPT TO:<%s@%s>\r\nDATA\r\n"
                b"Subject: smuggled\r\n\r\nevil\r\n" % (daemon.acc["u1"].encode(),
                                                       daemon.hostname.encode()))
    c.send(b"Subject: outer\r\n\r\nfirst" + seq + smuggled + b".\r\n")
    code, lines = c.reply()
    # the first reply is the verdict on the whole thing: refused, and nothing
    # after it was taken as a command
    assert code == 550 and lines[0].startswith(b"5.6."), (code, lines)
    code, lines = c.cmd("NOOP")
    assert code == 250, (code, lines)
    assert c.cmd("QUIT")[0] == 221
    c.close()
    assert not queued_evil(daemon)


def test_bare_lf_in_body_refused(daemon):
    c = Raw(daemon.port)
    start_data(c, daemon)
    c.send(b"Subject: x\r\n\r\nline\nother\r\n.\r\n")
    code, lines = c.reply()
    assert code == 550 and lines[0].startswith(b"5.6.")
    assert c.cmd("QUIT")[0] == 221
    c.close()


def test_dot_stuffing_round_trip(daemon):
    c = Raw(daemon.port)
    start_data(c, daemon)
    c.send(b"Subject: dots\r\n\r\n..\r\n...x\r\n.y\r\nz.\r\n.\r\n")
    code, lines = c.reply()
    assert code == 250
    c.cmd("QUIT")
    c.close()
    msgs = daemon.wait_for_mail(daemon.acc["u1"])
    assert msgs and msgs[0].get_payload() == ".\n..x\ny\nz.\n"


def test_lone_dot_first_line(daemon):
    """An empty message (the end mark right after 354) is a message."""
    c = Raw(daemon.port)
    start_data(c, daemon)
    c.send(b".\r\n")
    code, lines = c.reply()
    assert code == 250, lines
    c.close()


def test_eof_in_data_keeps_nothing(daemon):
    c = Raw(daemon.port)
    start_data(c, daemon)
    c.send(b"Subject: smuggled\r\n\r\npartial\r\n")
    c.s.shutdown(1)
    assert c.reply()[0] is None
    c.close()
    # the server aborted the queue file before it closed the connection
    assert not daemon.queue_files()
    assert not queued_evil(daemon)


# NUL bytes (RFC 5321 2.3.8): a next hop that drops them would read
# CR LF NUL . CR LF as an end of data, so a message holding one is refused
# like a bare CR or LF, after its real end.
NUL_SEQUENCES = [
    b"\r\n\x00.\r\n",     # the smuggling form
    b"\r\n.\x00\r\n",
    b"\x00",
    b"\r\n\x00\r\n",
]


@pytest.mark.parametrize("seq", NUL_SEQUENCES, ids=[repr(s) for s in NUL_SEQUENCES])
def test_nul_in_data_refused(daemon, seq):
    c = Raw(daemon.port)
    start_data(c, daemon)
    smuggled = (b"MAIL FROM:<spoof@bank.example>\r\nRCPT TO:<%s@%s>\r\nDATA\r\n"
                b"Subject: smuggled\r\n\r\nevil\r\n" % (daemon.acc["u1"].encode(),
                                                       daemon.hostname.encode()))
    c.send(b"Subject: outer\r\n\r\nfirst" + seq + smuggled + b".\r\n")
    code, lines = c.reply()
    assert code == 550 and lines[0].startswith(b"5.6.0") and b"NUL" in lines[0], lines
    assert c.cmd("NOOP")[0] == 250
    assert c.cmd("QUIT")[0] == 221
    c.close()
    assert not daemon.queue_files()
    assert not queued_evil(daemon)


@pytest.mark.parametrize("line", [b"NOOP\x00", b"MAIL FROM:<a@x.example>\x00 SIZE=10",
                                  b"\x00MAIL FROM:<a@x.example>", b"RCPT TO:<a\x00@x>"])
def test_nul_in_command_refused(daemon, line):
    c = Raw(daemon.port)
    c.reply()
    assert c.cmd("EHLO client.example")[0] == 250
    code, lines = c.cmd(line)
    assert code == 500 and lines[0].startswith(b"5.5.2") and b"NUL" in lines[0], lines
    # nothing of it was executed: no transaction was started
    assert c.cmd("RCPT TO:<%s@%s>" % (daemon.acc["u1"], daemon.hostname))[0] == 503
    assert c.cmd("QUIT")[0] == 221
    c.close()


def test_client_never_sends_nul(sandbox):
    """A message queued with NUL bytes (local submission takes them) goes out
    through the SMTP client without them, and LF NUL . LF stays one line."""
    from remote_util import send
    from smtpscript import ScriptServer
    srv = ScriptServer().start()
    try:
        msg = os.path.join(sandbox.dir, "df")
        with open(msg, "wb") as f:
            f.write(b"Subject: nul\n\nfirst\n\x00.\nMAIL FROM:<spoof@bank.example>\n"
                    b"a\x00b\n")
        res, err, _ = send("s@here.test", msg, "b@remote.test",
                           opts=[f"relay-host=[127.0.0.1]:{srv.port}",
                                 "hostname=client.test"])
        assert res["b@remote.test"][0] == "sent", (res, err)
        assert len(srv.messages) == 1
        assert srv.messages[0] == (b"Subject: nul\r\n\r\nfirst\r\n..\r\n"
                                   b"MAIL FROM:<spoof@bank.example>\r\nab\r\n")
        assert not any(c.startswith("MAIL FROM:<spoof") for c in srv.commands)
    finally:
        srv.stop()
