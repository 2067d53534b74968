"""A small authoritative-and-recursive-looking DNS server for the tests (dnslib).

Serves a zone given as a dict on 127.0.0.1 (UDP and TCP, same free port):

    zone = {
        "multi.test": [("MX", 10, "mx1.multi.test"), ("MX", 20, "mx2.multi.test")],
        "mx1.multi.test": [("A", "127.0.0.2")],
        "alias.test": [("CNAME", "multi.test")],
    }

Like a recursive resolver, a CNAME answer carries the chain and the target's
records, unless the owner is listed in `nochase` (then only the CNAME comes
back and the client must ask again).  `behave` maps a name to "servfail",
"refused", "silent" (no answer at all) or "truncate" (UDP answers carry TC=1
and no records; TCP gives the full answer).  A name in no record is NXDOMAIN;
a known name without the asked type is NODATA.  Every query is logged in
`queries` as (name, type, protocol).
"""
import socket
import threading

from dnslib import AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, TXT, A, DNSLabel, DNSRecord
from dnslib.server import DNSError, DNSServer


def _label(name):
    if isinstance(name, (list, tuple)):  # raw labels (bytes) for hostile names
        return DNSLabel(list(name))
    return DNSLabel(name)


def _rdata(rec):
    kind = rec[0]
    if kind == "MX":
        return QTYPE.MX, MX(_label(rec[2]), rec[1])
    if kind == "A":
        return QTYPE.A, A(rec[1])
    if kind == "AAAA":
        return QTYPE.AAAA, AAAA(rec[1])
    if kind == "CNAME":
        return QTYPE.CNAME, CNAME(_label(rec[1]))
    if kind == "PTR":
        return QTYPE.PTR, PTR(_label(rec[1]))
    if kind == "TXT":  # ("TXT", "text"): split in 255-byte strings as DNS needs
        t = rec[1].encode()
        return QTYPE.TXT, TXT([t[i:i + 255] for i in range(0, len(t), 255)] or [b""])
    raise ValueError(kind)


class _Resolver:
    def __init__(self, owner):
        self.o = owner

    def resolve(self, request, handler):
        q = request.q
        name = str(q.qname).rstrip(".").lower()
        self.o.queries.append((name, QTYPE[q.qtype], handler.protocol))
        how = self.o.behave.get(name)
        reply = request.reply()
        reply.header.aa = 1
        if how == "silent":
            raise DNSError("silent")
        if how == "servfail":
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        if how == "refused":
            reply.header.rcode = RCODE.REFUSED
            return reply
        if how == "truncate" and handler.protocol == "udp":
            reply.header.tc = 1
            return reply
        cur, hops = name, 0
        while True:
            recs = self.o.zone.get(cur)
            if recs is None:
                if hops == 0:
                    reply.header.rcode = RCODE.NXDOMAIN
                return reply
            cn = [r for r in recs if r[0] == "CNAME"]
            if cn and q.qtype != QTYPE.CNAME:
                t, rd = _rdata(cn[0])
                reply.add_answer(RR(cur, t, rdata=rd, ttl=60))
                if cur in self.o.nochase or hops > 20:
                    return reply
                cur = str(cn[0][1]).rstrip(".").lower()
                hops += 1
                continue
            for r in recs:
                t, rd = _rdata(r)
                if t == q.qtype:
                    reply.add_answer(RR(cur, t, rdata=rd, ttl=60))
            return reply


class _Quiet:
    def __getattr__(self, name):
        return lambda *a, **k: None


class ZoneServer:
    def __init__(self, zone, behave=None, nochase=(), address="127.0.0.1", port=None):
        self.zone = {k.lower(): v for k, v in zone.items()}
        self.behave = behave or {}
        self.nochase = set(nochase)
        self.queries = []
        self.address = address
        self.port = port or self._free_port()
        res = _Resolver(self)
        self.udp = DNSServer(res, port=self.port, address=address, logger=_Quiet())
        self.tcp = DNSServer(res, port=self.port, address=address, tcp=True,
                             logger=_Quiet())

    @staticmethod
    def _free_port():
        # a port free for both UDP and TCP
        for _ in range(50):
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.bind(("127.0.0.1", port))
            except OSError:
                continue
            finally:
                u.close()
                t.close()
            return port
        raise RuntimeError("no free port")

    @property
    def resolver(self):
        return f"{self.address}:{self.port}"

    def start(self):
        self.udp.start_thread()
        self.tcp.start_thread()
        return self

    def stop(self):
        for s in (self.udp, self.tcp):
            s.server.shutdown()
            s.server.server_close()


if __name__ == "__main__":
    # python3 dnsserver.py ADDRESS PORT ZONE.json: serve until killed
    import json
    import sys
    import time
    with open(sys.argv[3]) as f:
        zone = {k: [tuple(r) for r in v] for k, v in json.load(f).items()}
    ZoneServer(zone, address=sys.argv[1], port=int(sys.argv[2])).start()
    print("ready", flush=True)
    while True:
        time.sleep(3600)
