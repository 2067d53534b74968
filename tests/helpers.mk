# tests/helpers.mk - small C programs the tests run (spool crash and speed tests).
# Called by the top Makefile: make -f tests/helpers.mk CC=... CFLAGS=... WARN=...
CC ?= cc
CFLAGS ?= -O2 -g
CPPFLAGS = -I. -Iinclude

all: tests/bin/spooltool tests/bin/crashshim.so

tests/bin/spooltool: tests/helpers/spooltool.c libpo.a include/*.h config.h
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) $(WARN) $(CPPFLAGS) -o $@ tests/helpers/spooltool.c libpo.a

tests/bin/crashshim.so: tests/helpers/crashshim.c
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) -Wall -Wextra -Werror -fPIC -shared -o $@ tests/helpers/crashshim.c -ldl

clean:
	rm -f tests/bin/spooltool tests/bin/crashshim.so

.PHONY: all clean
