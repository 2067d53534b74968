# tests/helpers.mk - small C programs the tests run (spool crash and speed tests,
# the remote-delivery driver).
# Called by the top Makefile: make -f tests/helpers.mk CC=... CFLAGS=... WARN=...
CC ?= cc
CFLAGS ?= -O2 -g
CPPFLAGS = -I. $(patsubst %,-I%,$(wildcard src/*))
LIBS := $(shell sed -n 's/^LIBS = //p' Makefile)

all: tests/bin/spooltool tests/bin/crashshim.so tests/bin/po-remote

# built from the sources it needs, not libpo.a: the top Makefile may still be
# building libpo.a in parallel (make -j) when it calls us
SPOOLSRC = src/queue/spool.c src/queue/orig_queue.c src/queue/queue_file.c src/queue/queue_records.c src/queue/envelope.c src/lib/util.c src/lib/log.c src/lib/logfmt.c

tests/bin/spooltool: tests/helpers/spooltool.c $(SPOOLSRC) $(wildcard src/*/*.h) config.h
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) $(WARN) $(CPPFLAGS) -o $@ tests/helpers/spooltool.c $(SPOOLSRC) -lxxhash

tests/bin/crashshim.so: tests/helpers/crashshim.c
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) -Wall -Wextra -Werror -fPIC -shared -o $@ tests/helpers/crashshim.c -ldl

# the remote-delivery driver (smtpc, mx, dns without the queue runner)
REMOTESRC = src/deliver/remote_session.c src/deliver/smtp_client.c src/deliver/smtp_reply.c src/deliver/smtp_conn.c \
            src/deliver/smtp_txn.c src/deliver/smtp_cache.c src/deliver/smtp_dead.c src/deliver/smtp_tls.c src/deliver/smtp_auth.c src/deliver/relay_auth.c src/route/mx.c src/route/relay_map.c src/route/route.c src/route/vdomain.c src/lib/netaddr.c src/route/dns.c \
            src/deliver/message_out.c src/lib/date.c src/lib/conf.c src/smtpd/dnsbl.c src/lib/milter_conf.c src/route/mailbox_spec.c src/route/subaddress.c \
            src/queue/spool.c src/queue/orig_queue.c src/queue/queue_file.c src/queue/queue_records.c src/queue/envelope.c src/lib/util.c src/lib/log.c src/lib/logfmt.c

tests/bin/po-remote: tests/helpers/po-remote.c $(REMOTESRC) $(wildcard src/*/*.h) config.h
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) $(WARN) -Wno-missing-prototypes $(CPPFLAGS) -o $@ tests/helpers/po-remote.c $(REMOTESRC) $(LIBS)

clean:
	rm -f tests/bin/spooltool tests/bin/crashshim.so tests/bin/po-remote

.PHONY: all clean
