"""python3 smtpsink.py ADDRESS PORT OUTDIR: an aiosmtpd server that stores each
message as OUTDIR/NNN.eml (first line: "MAIL FROM RCPT,RCPT"), prints "ready"."""
import os
import sys
import time

from aiosmtpd.controller import Controller


class Store:
    def __init__(self, outdir):
        self.outdir = outdir
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        tmp = os.path.join(self.outdir, f".{self.n:03d}.tmp")
        with open(tmp, "wb") as f:
            f.write(f"{envelope.mail_from} {','.join(envelope.rcpt_tos)}\n".encode())
            f.write(envelope.original_content)
        os.rename(tmp, os.path.join(self.outdir, f"{self.n:03d}.eml"))
        return "250 2.0.0 stored"


if __name__ == "__main__":
    c = Controller(Store(sys.argv[3]), hostname=sys.argv[1], port=int(sys.argv[2]))
    c.start()
    print("ready", flush=True)
    while True:
        time.sleep(3600)
