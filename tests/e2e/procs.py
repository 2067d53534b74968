"""The daemon's processes as /proc shows them: its children, their kernel
names (comm: po-session, po-tls, ...), for the tests that count or inspect
them."""


def children(pid):
    """The direct children of pid ([] once it is gone)."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def comm(pid):
    """The kernel's short name of pid, or None once it is gone."""
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def kids_named(pid, name):
    """The children of pid whose short name is name."""
    return [k for k in children(pid) if comm(k) == name]
