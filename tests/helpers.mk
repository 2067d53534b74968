# tests/helpers.mk - small C programs the tests run (spool crash and speed tests).
# Called by the top Makefile: make -f tests/helpers.mk CC=... CFLAGS=... WARN=...
CC ?= cc
CFLAGS ?= -O2 -g
CPPFLAGS = -I. -Iinclude

all: tests/bin/spooltool tests/bin/crashshim.so

# built from the sources it needs, not libpo.a: the top Makefile may still be
# building libpo.a in parallel (make -j) when it calls us
SPOOLSRC = src/spool.c src/pickup.c src/ctl.c src/envelope.c src/util.c src/log.c

tests/bin/spooltool: tests/helpers/spooltool.c $(SPOOLSRC) include/*.h config.h
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) $(WARN) $(CPPFLAGS) -o $@ tests/helpers/spooltool.c $(SPOOLSRC)

tests/bin/crashshim.so: tests/helpers/crashshim.c
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) -Wall -Wextra -Werror -fPIC -shared -o $@ tests/helpers/crashshim.c -ldl

clean:
	rm -f tests/bin/spooltool tests/bin/crashshim.so

.PHONY: all clean
