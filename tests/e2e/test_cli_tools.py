"""The admin's tools in the spellings sendmail and Exim taught: -bv (where an
address goes), -bP (the configuration in effect), -bV (version and build),
-h/--help."""
import os

import pytest

from conftest import IS_ROOT
from dnsserver import ZoneServer

ZONE = {
    "remote.test": [("MX", 20, "mx2.remote.test"), ("MX", 10, "mx1.remote.test")],
    "mx1.remote.test": [("A", "198.51.100.1")],
    "mx2.remote.test": [("A", "198.51.100.2"), ("AAAA", "2001:db8::2")],
    "null.test": [("MX", 0, ".")],
}


@pytest.fixture(scope="module")
def dns():
    z = ZoneServer(ZONE, behave={"servfail.test": "servfail"}).start()
    yield z
    z.stop()


def bv(sandbox, *addrs):
    r = sandbox.run("postoffice", "-bv", *addrs)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def test_bv_local_alias_program_file(sandbox):
    u1 = sandbox.acc["u1"]
    sandbox.set_aliases(f"postmaster: {u1}\nteam: {u1}, \"|/bin/cat\", /tmp/po-bv-file, "
                        "far@[203.0.113.9]\n")
    rc, out, err = bv(sandbox, u1, "team")
    assert rc == 0, out + err
    lines = out.splitlines()
    assert lines[0] == u1 and "deliverable: local, 1 target" in lines[1]
    assert f"mailbox {u1}" in lines[2]
    team = out[out.index("team"):]
    assert "4 targets" in team
    assert "program /bin/cat" in team and "file /tmp/po-bv-file" in team
    assert "remote far@[203.0.113.9]" in team and "203.0.113.9" in team


def test_bv_unknown_and_syntax(sandbox):
    rc, out, _ = bv(sandbox, "no-such-user-po")
    assert rc == 67 and "undeliverable" in out and "5.1.1" in out
    rc, out, _ = bv(sandbox, "bad@@x", "no-such-user-po")
    assert rc == 65 and "syntax error" in out  # the worse of the two
    rc, out, err = sandbox.run("postoffice", "-bv").returncode, "", ""
    assert rc == 64


def test_bv_shows_where_a_mailbox_is(sandbox):
    """-bv names the mailbox file, maildir or LMTP server mailbox= gives."""
    u1 = sandbox.acc["u1"]
    rc, out, err = bv(sandbox, u1)
    assert rc == 0, out + err
    assert f"mailbox {u1} (as {u1}) -> {sandbox.spool}/{u1}\n" in out
    md = os.path.join(sandbox.dir, "md")
    sandbox.write_config(mailbox=f"{md}/%u/")
    rc, out, err = bv(sandbox, u1)
    assert rc == 0 and f"-> {md}/{u1}/ (maildir)" in out, out + err
    sandbox.write_config(mailbox="lmtp:[127.0.0.1]:24")
    rc, out, err = bv(sandbox, u1)
    assert rc == 0 and "-> LMTP (lmtp:[127.0.0.1]:24)" in out, out + err


def test_bv_remote_mx_and_relay_host(sandbox, dns):
    sandbox.write_config(resolver=dns.resolver, dns_timeout="1", dns_tries="1")
    rc, out, err = bv(sandbox, "someone@remote.test")
    assert rc == 0, out + err
    assert "remote, to the domain's hosts" in out
    # by preference: mx1 (10) before mx2 (20), with their addresses
    assert out.index("mx1.remote.test (preference 10): 198.51.100.1") < \
        out.index("mx2.remote.test (preference 20):")
    assert "2001:db8::2" in out
    rc, out, _ = bv(sandbox, "x@null.test")
    assert rc == 67 and "5.1.10" in out
    rc, out, _ = bv(sandbox, "x@servfail.test")
    assert rc == 75 and "cannot tell now" in out
    sandbox.write_config(relay_host="[203.0.113.25]:587")
    rc, out, _ = bv(sandbox, "someone@remote.test")
    assert rc == 0 and "through relay-host" in out and "203.0.113.25" in out


def test_bP_all_and_named(sandbox):
    sandbox.write_config(size="10m", trusted=["203.0.113.0/24"])
    r = sandbox.run("postoffice", "-bP")
    out = r.stdout.decode()
    assert r.returncode == 0 and "size=10000000" in out and f"queuedir={sandbox.queue}" in out
    r = sandbox.run("postoffice", "-bP", "size", "relay-host", "TRUSTED")
    assert r.returncode == 0
    assert r.stdout.decode().splitlines() == ["size=10000000", "relay-host=",
                                              "trusted=203.0.113.0/24"]
    r = sandbox.run("postoffice", "-bP", "no-such-option")
    assert r.returncode == 64 and b"no-such-option is not an option" in r.stderr


def test_bV_version_and_build(sandbox):
    r = sandbox.run("postoffice", "-bV")
    out = r.stdout.decode()
    assert r.returncode == 0 and out.startswith("postoffice ")
    for key in ("configuration:", "queue:", "tcp wrappers:", "milter:", "libraries: OpenSSL"):
        assert key in out, out


@pytest.mark.parametrize("args", [["--help"], ["-h"]])
def test_help(sandbox, args):
    r = sandbox.run("sendmail", *args)
    assert r.returncode == 0 and b"usage: sendmail" in r.stdout and b"-bv" in r.stdout


def test_h_with_a_value_is_sendmails_hop_count(sandbox):
    r = sandbox.sendmail("-h", "30", sandbox.acc["u1"], message="Subject: hop\n\nx\n")
    assert r.returncode == 0, r.stderr
    assert sandbox.wait_for_mail(sandbox.acc["u1"])
