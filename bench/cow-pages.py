#!/usr/bin/python3
"""bench/cow-pages.py CHILD MASTER [-v] - which writable pages a forked
child holds privately: for each mapping, the pages whose frame differs from
the master's at the same address (/proc/PID/pagemap, root only).  With -v,
for each private [heap] page: how many bytes differ from the master's copy
(0 = written and put back: a lock taken and released, a count up and down)
and the first strings on it (what lives there: algorithm names, our text).
(The master keeps running: a page it wrote after the fork counts too.)"""
import re
import struct
import sys

FRAME = (1 << 55) - 1


def maps(pid):
    for line in open("/proc/%d/maps" % pid):
        f = line.split()
        a, b = (int(x, 16) for x in f[0].split("-"))
        yield a, b, f[1], f[5] if len(f) > 5 else "[anon]"


def frames(pid, a, b):
    with open("/proc/%d/pagemap" % pid, "rb") as f:
        f.seek(a // 4096 * 8)
        d = f.read((b - a) // 4096 * 8)
    return [struct.unpack_from("<Q", d, i * 8)[0] for i in range(len(d) // 8)]


def main():
    child, master = int(sys.argv[1]), int(sys.argv[2])
    verbose = "-v" in sys.argv[3:]
    cmem = open("/proc/%d/mem" % child, "rb")
    mmem = open("/proc/%d/mem" % master, "rb")
    total = 0
    for a, b, perm, name in maps(child):
        if "w" not in perm:
            continue
        cf, mf = frames(child, a, b), frames(master, a, b)
        priv = [i for i, (c, m) in enumerate(zip(cf, mf))
                if c >> 63 and not (m >> 63 and c & FRAME == m & FRAME)]
        if not priv:
            continue
        total += len(priv)
        print("%-50s %x-%x: %d private pages" % (name, a, b, len(priv)))
        if not verbose or name != "[heap]":
            continue
        for i in priv:
            cmem.seek(a + i * 4096)
            cd = cmem.read(4096)
            if not mf[i] >> 63:
                print("  +%06x new (the master has no page here)" % (i * 4096))
                continue
            mmem.seek(a + i * 4096)
            md = mmem.read(4096)
            diff = sum(1 for x, y in zip(cd, md) if x != y)
            words = b" ".join(re.findall(rb"[A-Za-z0-9_:-]{6,}", cd))[:90]
            print("  +%06x %4d bytes differ  %s" % (i * 4096, diff, words.decode()))
    print("total: %d private pages (%d KiB)" % (total, total * 4))


main()
