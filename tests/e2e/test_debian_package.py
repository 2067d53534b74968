"""The Debian package, for real: dpkg-buildpackage builds it from a clean
export of the tree, lintian finds no error, and in a throwaway Debian 12 root
(mmdebstrap from Debian's mirror, entered with chroot in a private mount
namespace) it replaces exim4, delivers what `sendmail -t`, `mail` and cron
send to root through the root alias it set up, and survives remove, purge and
reinstall.

Skips with the reason when the machine cannot do it: not root, the packaging
tools missing, or Debian's mirror unreachable.
"""
import glob
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import ROOT, IS_ROOT

MIRROR = "http://deb.debian.org/debian"
# our run-time libraries and the MTA we replace, all from the mirror at
# bootstrap time, so nothing inside the root needs the network afterwards
INCLUDE = ",".join([
    "exim4-daemon-light", "bsd-mailx", "libgdbm6", "libc-ares2", "libssl3",
    "libwrap0", "libcrypt1", "libxxhash0", "procps",
])


def _have(*cmds):
    return all(shutil.which(c) for c in cmds)


def run(cmd, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(cmd, **kw)


@pytest.fixture(scope="module")
def work():
    if not IS_ROOT:
        pytest.skip("the package test needs root (chroot, mmdebstrap --mode=root)")
    if not _have("dpkg-buildpackage", "dh", "mmdebstrap", "lintian", "unshare"):
        pytest.skip("dpkg-dev, debhelper, mmdebstrap or lintian missing "
                    "(./bootstrap.sh test installs them)")
    d = tempfile.mkdtemp(prefix="po-deb-")
    yield d
    # the root was made by us as root: nothing mounted survives the
    # private mount namespaces, so a plain removal is enough
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def deb(work):
    src = os.path.join(work, "src")
    os.makedirs(src)
    # the committed tree plus the working changes, never build products
    ls = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT)
    if ls.returncode != 0:
        pytest.skip("the package is built from a git checkout; this tree is a copy "
                    "(tests/sanitize.sh): the plain suite builds and installs it")
    files = ls.stdout.split("\0")
    for f in filter(None, files):
        p = os.path.join(ROOT, f)
        if os.path.isfile(p):
            os.makedirs(os.path.dirname(os.path.join(src, f)), exist_ok=True)
            shutil.copy2(p, os.path.join(src, f), follow_symlinks=False)
    r = run(["dpkg-buildpackage", "-b", "-us", "-uc"], cwd=src,
            env={**os.environ, "DEB_BUILD_OPTIONS": "parallel=2"})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    debs = [p for p in glob.glob(os.path.join(work, "postoffice_*.deb"))]
    assert len(debs) == 1, debs
    return debs[0]


@pytest.fixture(scope="module")
def chroot(work, deb):
    root = os.path.join(work, "root")
    r = run(["mmdebstrap", "--variant=minbase", "--mode=root", f"--include={INCLUDE}",
             "bookworm", root, MIRROR])
    if r.returncode != 0:
        if "Could not resolve" in r.stderr or "Failed to fetch" in r.stderr or \
           "Temporary failure" in r.stderr:
            pytest.skip(f"Debian's mirror is unreachable: {r.stderr.strip()[-300:]}")
        raise AssertionError(r.stderr[-3000:])
    # the first person's account: postinst points root's alias at it
    assert sh(root, "useradd -m -u 1000 -s /bin/bash alice").returncode == 0
    return root


def sh(root, script, check=False):
    """Run script as root inside the throwaway system (own mount namespace,
    its own /proc), with no service started by package scripts."""
    inner = ("mount -t proc proc {r}/proc && mount --bind /dev {r}/dev && "
             "exec chroot {r} /bin/sh -c \"$0\"").format(r=root)
    r = run(["unshare", "--mount", "sh", "-c", inner,
             "export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8; "
             "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d; "
             "chmod 755 /usr/sbin/policy-rc.d; " + script])
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def read(root, path):
    with open(os.path.join(root, path.lstrip("/")), errors="replace") as f:
        return f.read()


def wait_for(root, path, text, tries=40):
    import time
    for _ in range(tries):
        p = os.path.join(root, path.lstrip("/"))
        if os.path.exists(p) and text in read(root, path):
            return True
        time.sleep(0.25)
    return False


def test_lintian_has_no_error(deb):
    r = run(["lintian", "--fail-on", "error", deb])
    assert r.returncode == 0, r.stdout + r.stderr


def test_package_contents(deb):
    out = run(["dpkg-deb", "-c", deb]).stdout
    assert "./usr/sbin/postoffice" in out
    assert "./lib/systemd/system/postoffice.service" in out
    # no file another Debian package owns: smtpd is OpenSMTPD's
    assert "./usr/sbin/smtpd" not in out and "/man8/smtpd.8" not in out
    assert "/man7/mailaddr.7" not in out
    for line in out.splitlines():
        if " -> /" in line:
            raise AssertionError("absolute symlink: " + line)
    info = run(["dpkg-deb", "-f", deb, "Provides", "Conflicts", "Replaces"]).stdout
    assert info.count("mail-transport-agent") == 3, info


def test_install_replaces_exim(deb, chroot):
    shutil.copy(deb, os.path.join(chroot, "tmp/postoffice.deb"))
    assert sh(chroot, "dpkg -s exim4-daemon-light | grep -q 'ok installed'").returncode == 0
    r = sh(chroot, "apt-get install -y /tmp/postoffice.deb", check=True)
    assert "alice" in r.stdout + r.stderr  # postinst says where root's mail goes
    r = sh(chroot, "dpkg -s exim4-daemon-light 2>&1; dpkg -s postoffice")
    assert "is not installed" in r.stdout + r.stderr or "deinstall" in r.stdout
    assert "Status: install ok installed" in r.stdout
    st = os.stat(os.path.join(chroot, "var/spool/postoffice"))
    assert oct(st.st_mode & 0o7777) == "0o711"
    mail_uid = int(sh(chroot, "id -u mail").stdout)
    assert st.st_uid == mail_uid
    aliases = read(chroot, "/etc/aliases")
    assert any(line.split(":")[0].strip() == "root" and "alice" in line
               for line in aliases.splitlines()), aliases
    assert os.path.exists(os.path.join(chroot, "etc/aliases.db"))
    cf = os.path.join(chroot, "etc/postoffice.cf")
    assert oct(os.stat(cf).st_mode & 0o777) == "0o644"
    # the default configuration passes the secure-path check
    r = sh(chroot, "postoffice -bp")
    assert r.returncode == 0, r.stderr


def test_sendmail_mail_and_cron_reach_root_alias(chroot):
    sh(chroot, "printf 'To: root\\nSubject: via sendmail -t\\n\\nfirst\\n' | sendmail -t",
       check=True)
    sh(chroot, "echo second | mail -s 'via mailx' root", check=True)
    # what Debian's cron runs for a job's output
    sh(chroot, "printf 'Subject: Cron <root@box> true\\n\\nthird\\n' | "
               "/usr/sbin/sendmail -FCronDaemon -i -B8BITMIME -oem root", check=True)
    box = "/var/mail/alice"
    for text in ("via sendmail -t", "via mailx", "Cron <root@box>"):
        assert wait_for(chroot, box, text), (text, sh(chroot, "mailq; ls -l /var/mail").stdout)
    st = os.stat(os.path.join(chroot, box.lstrip("/")))
    assert st.st_uid == 1000  # alice's own mailbox, not root's


def test_mailq_and_newaliases(chroot):
    r = sh(chroot, "mailq")
    assert r.returncode == 0 and "empty" in r.stdout.lower(), r.stdout + r.stderr
    sh(chroot, "echo 'team: alice, root' >> /etc/aliases && newaliases", check=True)
    sh(chroot, "echo team | mail -s 'to the team' team", check=True)
    assert wait_for(chroot, "/var/mail/alice", "to the team")


def test_mailname_is_the_default_hostname(chroot):
    sh(chroot, "echo mail.example.net > /etc/mailname", check=True)
    r = sh(chroot, "postoffice -bs </dev/null")
    assert "mail.example.net" in r.stdout.splitlines()[0], r.stdout


def test_remove_keeps_queue_purge_removes(chroot):
    sh(chroot, "apt-get remove -y postoffice", check=True)
    assert os.path.isdir(os.path.join(chroot, "var/spool/postoffice"))
    assert os.path.exists(os.path.join(chroot, "etc/postoffice.cf"))  # a conffile
    sh(chroot, "apt-get purge -y postoffice", check=True)
    assert not os.path.exists(os.path.join(chroot, "var/spool/postoffice"))
    assert not os.path.exists(os.path.join(chroot, "etc/postoffice.cf"))
    assert not os.path.exists(os.path.join(chroot, "etc/aliases.db"))
    # exim made /etc/aliases; purge takes back only the root line we added
    aliases = read(chroot, "/etc/aliases")
    assert "added by postoffice" not in aliases
    assert "team: alice, root" in aliases


def test_reinstall(chroot):
    # (purge took bsd-mailx with it: it needs a mail-transport-agent)
    sh(chroot, "apt-get install -y /tmp/postoffice.deb", check=True)
    sh(chroot, "printf 'Subject: after reinstall\\n\\nagain\\n' | sendmail root", check=True)
    assert wait_for(chroot, "/var/mail/alice", "after reinstall")
