# tests/helpers.mk - small C programs the tests run (spool crash and speed tests,
# the remote-delivery driver).
# Called by the top Makefile: make -f tests/helpers.mk CC=... CFLAGS=... WARN=...
CC ?= cc
CFLAGS ?= -O2 -g
CPPFLAGS = -I. -Iinclude
LIBS := $(shell sed -n 's/^LIBS = //p' Makefile)

all: tests/bin/spooltool tests/bin/crashshim.so tests/bin/po-remote

# built from the sources it needs, not libpo.a: the top Makefile may still be
# building libpo.a in parallel (make -j) when it calls us
SPOOLSRC = src/spool.c src/origq.c src/qfile.c src/ctl.c src/envelope.c src/util.c src/log.c

tests/bin/spooltool: tests/helpers/spooltool.c $(SPOOLSRC) include/*.h config.h
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) $(WARN) $(CPPFLAGS) -o $@ tests/helpers/spooltool.c $(SPOOLSRC)

tests/bin/crashshim.so: tests/helpers/crashshim.c
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) -Wall -Wextra -Werror -fPIC -shared -o $@ tests/helpers/crashshim.c -ldl

# the remote-delivery driver (smtpc, mx, dns without the queue runner)
REMOTESRC = src/remote.c src/smtpc.c src/smtp_reply.c src/smtp_conn.c \
            src/smtp_txn.c src/smtp_cache.c src/mx.c src/route.c src/netaddr.c src/dns.c \
            src/msgout.c src/date.c src/conf.c \
            src/spool.c src/origq.c src/qfile.c src/ctl.c src/envelope.c src/util.c src/log.c

tests/bin/po-remote: tests/helpers/po-remote.c $(REMOTESRC) include/*.h config.h
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) $(WARN) -Wno-missing-prototypes $(CPPFLAGS) -o $@ tests/helpers/po-remote.c $(REMOTESRC) $(LIBS)

clean:
	rm -f tests/bin/spooltool tests/bin/crashshim.so tests/bin/po-remote

.PHONY: all clean
