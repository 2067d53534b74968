"""configure.sh and make install/uninstall, on the built tree."""
import os
import subprocess

from conftest import ROOT


def test_configure_help_and_bad_option():
    r = subprocess.run(["sh", "configure.sh", "--help"], cwd=ROOT, capture_output=True)
    assert r.returncode == 0 and b"--with-queuedir" in r.stdout
    r = subprocess.run(["sh", "configure.sh", "--frobnicate"], cwd=ROOT, capture_output=True)
    assert r.returncode == 64 and b"unknown option" in r.stderr


def test_install_and_uninstall(tmp_path):
    dest = str(tmp_path / "stage")
    r = subprocess.run(["make", "-s", "install", f"DESTDIR={dest}"], cwd=ROOT,
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    files = []
    for d, _, fs in os.walk(dest):
        files += [os.path.join(d, f) for f in fs]
    names = {os.path.basename(f) for f in files}
    for want in ("postoffice", "sendmail", "mailq", "runq", "newaliases",
                 "postoffice.8", "postoffice.cf.5", "aliases.5", "sendmail.8",
                 "postoffice-queue.5", "postoffice.service"):
        assert want in names, want
    # /usr/sbin/smtpd is OpenSMTPD's: a package must not clash with it
    assert "smtpd" not in names
    binary = [f for f in files if f.endswith("sbin/postoffice")][0]
    assert not os.stat(binary).st_mode & 0o6000  # never setuid/setgid
    for link in ("sendmail", "mailq", "runq", "newaliases"):
        p = [f for f in files if os.path.basename(f) == link and "/man" not in f][0]
        assert os.path.islink(p)
        # relative, so the tree can be moved (Debian policy 10.5)
        assert not os.readlink(p).startswith("/"), os.readlink(p)
        assert os.path.realpath(p) == os.path.realpath(binary)
    unit = open([f for f in files if f.endswith("postoffice.service")][0]).read()
    assert "Type=notify" in unit and "@sbindir@" not in unit
    r = subprocess.run(["make", "-s", "uninstall", f"DESTDIR={dest}"], cwd=ROOT,
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    left = [os.path.join(d, f) for d, _, fs in os.walk(dest) for f in fs]
    assert left == []
