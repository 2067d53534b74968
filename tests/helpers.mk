# tests/helpers.mk - small C programs the end-to-end tests run, built by
# `make` (Makefile's tests/helpers target) into tests/bin/.  Each
# tests/helpers/NAME.c becomes tests/bin/NAME, linked with libpo.a.
CC ?= cc
CFLAGS ?= -O2 -g
CPPFLAGS = -I. -Iinclude
LIBS := $(shell sed -n 's/^LIBS = //p' Makefile)
HELPERSRC = $(wildcard tests/helpers/*.c)
HELPERBIN = $(patsubst tests/helpers/%.c,tests/bin/%,$(HELPERSRC))

helpers: $(HELPERBIN)

tests/bin/%: tests/helpers/%.c libpo.a include/*.h config.h
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) $(WARN) -Wno-missing-prototypes $(CPPFLAGS) -o $@ $< libpo.a $(LIBS)

clean:
	rm -rf tests/bin

.PHONY: helpers clean
