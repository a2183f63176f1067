# mosqlite: plain make, pkg-config, -Wall -Wextra -Werror.
#
#   make            build bin/mosqlite-writer, bin/mosqlite-pub, build/libmosqlite.{a,so}
#   make test       install missing Debian/npm packages, build, run tests/run.sh
#   make run        install missing packages, start Mosquitto + writer + page (Ctrl-C stops)
#   make asan       the same test suite against an ASan+UBSan build
#   make bench      tests/bench (not part of make test)
#   make fuzz       libFuzzer over the request parser (FUZZ_SECONDS, default 60)
#   make install    PREFIX=/usr/local DESTDIR=
#
# User CFLAGS/LDFLAGS are kept apart from the flags the build needs.

VERSION    = 0.1.0
PREFIX    ?= /usr/local
DESTDIR   ?=
CC        ?= cc
CFLAGS    ?= -O2 -g
LDFLAGS   ?=
PKGS       = libmosquitto sqlite3 libcjson
# Lazy (=) so pkg-config runs after `make deps` has installed the -dev packages.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))
WARN       = -Wall -Wextra -Werror -Wformat=2 -Wstrict-prototypes -Wwrite-strings \
             -Wmissing-prototypes -Wno-unused-parameter
BUILD     ?= build
BIN       ?= bin
ALL_CFLAGS = -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L \
             -DMOSQLITE_VERSION='"$(VERSION)"' -Icommon -Ipublisher \
             $(WARN) $(PKG_CFLAGS) $(CFLAGS)

COMMON_SRC = $(wildcard common/*.c)
WRITER_SRC = $(wildcard writer/*.c)
# The publisher library is every publisher/*.c except the CLI's: main.c and the log
# pipe (pipe.c, spool.c).
PUBCLI_SRC = publisher/main.c publisher/pipe.c publisher/spool.c
PUBLIB_SRC = $(filter-out $(PUBCLI_SRC),$(wildcard publisher/*.c))

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))
COMMON_OBJ = $(call obj,$(COMMON_SRC))
WRITER_OBJ = $(call obj,$(WRITER_SRC))
PUBLIB_OBJ = $(call obj,$(PUBLIB_SRC))
PUBLIB_PIC = $(patsubst %.c,$(BUILD)/pic/%.o,$(PUBLIB_SRC))
PUBCLI_OBJ = $(call obj,$(PUBCLI_SRC))

PROGS = $(BIN)/mosqlite-writer $(BIN)/mosqlite-pub
LIBS  = $(BUILD)/libmosqlite.a $(BUILD)/libmosqlite.so

.PHONY: all deps test run asan bench fuzz soak install clean web
all: $(PROGS) $(LIBS)

$(BUILD)/%.o: %.c $(wildcard common/*.h writer/*.h publisher/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/pic/%.o: %.c $(wildcard common/*.h publisher/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -c -o $@ $<

$(BIN)/mosqlite-writer: $(WRITER_OBJ) $(COMMON_OBJ)
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(BIN)/mosqlite-pub: $(PUBCLI_OBJ) $(BUILD)/libmosqlite.a $(COMMON_OBJ)
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(BUILD)/libmosqlite.a: $(PUBLIB_OBJ)
	@mkdir -p $(BUILD)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libmosqlite.so: $(PUBLIB_PIC)
	@mkdir -p $(BUILD)
	$(CC) -shared $(CFLAGS) $(LDFLAGS) -Wl,-soname,libmosqlite.so.0 -o $@ $^ $(PKG_LIBS)

# Installs missing Debian packages (apt-get, as root or via sudo) and npm packages.
deps:
	@sh tests/deps.sh

web: deps
	@sh web/build.sh

test: deps
	$(MAKE) all
	@sh web/build.sh
	@sh tests/run.sh

run: deps
	$(MAKE) all
	@sh web/build.sh
	@sh conf/run.sh

ASAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
asan: deps
	$(MAKE) BUILD=build/asan BIN=build/asan/bin CFLAGS="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" all
	@sh web/build.sh
	@# A small quarantine keeps ASan's own memory from hiding the writer's in RSS checks.
	@ASAN_OPTIONS=$${ASAN_OPTIONS:-quarantine_size_mb=4} BIN=build/asan/bin sh tests/run.sh

bench: deps
	$(MAKE) all
	@sh tests/bench/run.sh

soak: deps
	$(MAKE) all
	@SOAK=1 sh tests/run.sh

FUZZ_SECONDS ?= 60
fuzz: deps
	@sh tests/fuzz/run.sh $(FUZZ_SECONDS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/share/mosqlite/web
	install -m 755 $(PROGS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(BUILD)/libmosqlite.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libmosqlite.so $(DESTDIR)$(PREFIX)/lib/libmosqlite.so.0
	ln -sf libmosqlite.so.0 $(DESTDIR)$(PREFIX)/lib/libmosqlite.so
	install -m 644 publisher/mosqlite.h $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' publisher/mosqlite.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/mosqlite.pc
	cp -r conf $(DESTDIR)$(PREFIX)/share/mosqlite/
	install -m 644 README.md $(DESTDIR)$(PREFIX)/share/mosqlite/
	cp -r web/. $(DESTDIR)$(PREFIX)/share/mosqlite/web/

clean:
	rm -rf build bin
