"""Each child names itself for ps: "postoffice: TITLE" (child.h)."""
import os
import time

from conftest import IS_ROOT


def test_program_and_background_delivery_titles(sandbox, accounts):
    """A program run from an alias sees its ancestors as ps shows them: the
    local delivery child ("program USER") and the background delivery that
    sendmail started ("deliver")."""
    out = os.path.join(sandbox.dir, "ancestors")
    script = os.path.join(sandbox.dir, "ancestors.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\n"
                "p=$PPID\n"
                "while [ \"$p\" -gt 1 ]; do\n"
                "  tr '\\0' ' ' < /proc/$p/cmdline; echo\n"
                "  p=$(sed 's/.*) //' /proc/$p/stat | cut -d' ' -f2)\n"
                f"done > {out}.tmp\n"
                f"cat > /dev/null; mv {out}.tmp {out}\n")
    os.chmod(script, 0o755)
    os.chmod(sandbox.dir, 0o777)
    sandbox.set_aliases(f'titles: "|{script}"\n')
    r = sandbox.sendmail("-i", "titles", message="Subject: t\n\nhello\n")
    assert r.returncode == 0, r.stderr
    for _ in range(200):
        if os.path.exists(out):
            break
        time.sleep(0.05)
    with open(out) as f:
        lines = [line.strip() for line in f]
    titles = [line for line in lines if line.startswith("postoffice: ")]
    who = "program " if IS_ROOT else "program"
    assert any(t.startswith("postoffice: " + who) for t in titles), lines
    assert "postoffice: deliver" in titles, lines
