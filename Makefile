# mosqlite: plain make, pkg-config, -Wall -Wextra -Werror.
#
#   make            build bin/mosqlite-writer, bin/mosqlite-pub, bin/mosqlite-work, bin/mosqlite-replica,
#                   bin/mosqlite (the operator's command), build/libmosqlite.{a,so}
#   make check      unit tests of the writer's pure parts and common/, and conf/mosqlite.conf against
#                   mosqlite-writer --help (no broker, < 1 s); tests/structure.sh (no source file
#                   over 700 lines, no function over 80)
#   make test       install missing Debian/npm packages, build, make check, run tests/run.sh
#   make run        install missing packages, start Mosquitto + writer + page (Ctrl-C stops)
#   make asan       the unit tests and the same test suite against an ASan+UBSan build
#   make bench      tests/bench (not part of make test)
#   make fuzz       libFuzzer over the request parser, the publisher's request building, the
#                   writer's job messages and
#                   what mosqlite-work reads
#                   (FUZZ_SECONDS in all, default 60)
#   make install    PREFIX=/usr/local DESTDIR= SYSCONFDIR=/etc (make uninstall undoes it)
#   make deb        a Debian package (debian/), into build/deb/
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
# The writer (writer/etcd_http.c, its leader lease) and the replica (watching that key)
# talk to etcd: libcurl, built against its header and loaded at run time (dlopen), only
# when etcd is configured (writer/etcd_http.c).
WRITER_PKG_CFLAGS = $(shell pkg-config --cflags libcurl)
WRITER_PKG_LIBS   = -lpthread -ldl
# libmosqlite needs no SQLite: only what its .pc file names.
PUBLIB_LIBS = $(shell pkg-config --libs libmosquitto libcjson) -lpthread
WARN       = -Wall -Wextra -Werror -Wformat=2 -Wstrict-prototypes -Wwrite-strings \
             -Wmissing-prototypes -Wno-unused-parameter
BUILD     ?= build
BIN       ?= bin
# SQLite's session extension (changesets for replicas): Debian's libsqlite3 has it
# compiled in; these make sqlite3.h declare it.
ALL_CFLAGS = -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L \
             -DSQLITE_ENABLE_SESSION -DSQLITE_ENABLE_PREUPDATE_HOOK \
             -DMOSQLITE_VERSION='"$(VERSION)"' -Icommon -Ipublisher \
             $(WARN) $(PKG_CFLAGS) $(CFLAGS)

COMMON_SRC = $(wildcard common/*.c)
WRITER_SRC = $(wildcard writer/*.c)
REPLICA_SRC = $(wildcard replica/*.c)
# The operator's command: console/*.c and publisher/cliconn.c on libmosqlite (ids) and
# libmosquitto.
CONSOLE_SRC = $(wildcard console/*.c)
# The publisher library is every publisher/*.c except the CLI's: main.c, hints.c and the
# log pipe (pipe*.c, spool.c).
PUBCLI_SRC = publisher/main.c publisher/pipe.c publisher/pipe_read.c publisher/pipe_deliver.c \
             publisher/pipe_build.c publisher/pipe_cancel.c publisher/pipe_command.c publisher/spool.c \
             publisher/hints.c
# It holds the strict JSON scan it shares with the writer, from common/ (hidden, as the
# library's internal functions are); the programs linked with the library take those
# objects from it.
PUBLIB_COMMON_SRC = common/jscan.c common/utf8.c
# The job agent, mosqlite-work: work*.c and cliconn.c, with the log pipe's reading and
# delivering parts (not pipe.c, the pipe's own run).
WORK_SRC   = $(wildcard publisher/work*.c)
WORK_PIPE_SRC = publisher/pipe_read.c publisher/pipe_deliver.c publisher/pipe_build.c \
             publisher/pipe_command.c publisher/spool.c
# The direct MQTT client of mosqlite and mosqlite-work (not the library's).
CLICONN_SRC = publisher/cliconn.c
PUBLIB_SRC = $(filter-out $(PUBCLI_SRC) $(WORK_SRC) $(CLICONN_SRC),$(wildcard publisher/*.c)) \
             $(PUBLIB_COMMON_SRC)
# Unit tests: tests/unit/*.c linked with every writer and replica object but main.o.
UNIT_SRC   = $(wildcard tests/unit/*.c)

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))
COMMON_OBJ = $(call obj,$(COMMON_SRC))
WRITER_OBJ = $(call obj,$(WRITER_SRC))
REPLICA_OBJ = $(call obj,$(REPLICA_SRC))
CONSOLE_OBJ = $(call obj,$(CONSOLE_SRC) $(CLICONN_SRC))
PUBLIB_OBJ = $(call obj,$(PUBLIB_SRC))
PUBLIB_PIC = $(patsubst %.c,$(BUILD)/pic/%.o,$(PUBLIB_SRC))
PUBCLI_OBJ = $(call obj,$(PUBCLI_SRC))
WORK_OBJ   = $(call obj,$(WORK_SRC) $(WORK_PIPE_SRC) $(CLICONN_SRC))
UNIT_OBJ   = $(call obj,$(UNIT_SRC))
# common/ for a program linked with libmosqlite.a: less what the library holds.
COMMON_NOLIB_OBJ = $(filter-out $(call obj,$(PUBLIB_COMMON_SRC)),$(COMMON_OBJ))
WRITER_LIB_OBJ = $(filter-out $(BUILD)/writer/main.o,$(WRITER_OBJ))
REPLICA_LIB_OBJ = $(filter-out $(BUILD)/replica/main.o,$(REPLICA_OBJ))

PROGS = $(BIN)/mosqlite-writer $(BIN)/mosqlite-pub $(BIN)/mosqlite-replica $(BIN)/mosqlite \
        $(BIN)/mosqlite-work
LIBS  = $(BUILD)/libmosqlite.a $(BUILD)/libmosqlite.so

.PHONY: all deps check test run asan bench fuzz soak install clean web
all: $(PROGS) $(LIBS)

$(BUILD)/%.o: %.c $(wildcard common/*.h writer/*.h publisher/*.h replica/*.h tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/pic/%.o: %.c $(wildcard common/*.h publisher/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fPIC -c -o $@ $<

$(WRITER_OBJ): ALL_CFLAGS += $(WRITER_PKG_CFLAGS)

$(BIN)/mosqlite-writer: $(WRITER_OBJ) $(COMMON_OBJ)
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(WRITER_PKG_LIBS) -lm

# A replica watches the leader key (replica/watch.c) with the writer's etcd client.
REPLICA_ETCD_OBJ = $(BUILD)/writer/etcd.o $(BUILD)/writer/etcd_http.o
$(REPLICA_OBJ): ALL_CFLAGS += -Iwriter $(WRITER_PKG_CFLAGS)

$(BIN)/mosqlite-replica: $(REPLICA_OBJ) $(REPLICA_ETCD_OBJ) $(COMMON_OBJ)
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(WRITER_PKG_LIBS) -lm

$(BIN)/mosqlite: $(CONSOLE_OBJ) $(BUILD)/libmosqlite.a $(COMMON_NOLIB_OBJ)
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(BIN)/mosqlite-pub: $(PUBCLI_OBJ) $(BUILD)/libmosqlite.a $(COMMON_NOLIB_OBJ)
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(BIN)/mosqlite-work: $(WORK_OBJ) $(BUILD)/libmosqlite.a $(COMMON_NOLIB_OBJ)
	@mkdir -p $(BIN)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) -lpthread -lm

$(BUILD)/libmosqlite.a: $(PUBLIB_OBJ)
	@mkdir -p $(BUILD)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libmosqlite.so: $(PUBLIB_PIC)
	@mkdir -p $(BUILD)
	$(CC) -shared $(CFLAGS) $(LDFLAGS) -Wl,-soname,libmosqlite.so.0 -o $@ $^ $(PUBLIB_LIBS)

$(UNIT_OBJ): ALL_CFLAGS += -Iwriter -Ireplica
$(CONSOLE_OBJ): $(wildcard console/*.h)

$(BUILD)/unit-tests: $(UNIT_OBJ) $(WRITER_LIB_OBJ) $(REPLICA_LIB_OBJ) $(COMMON_OBJ)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(WRITER_PKG_LIBS) -lm

check: $(BUILD)/unit-tests $(BIN)/mosqlite-writer
	@BIN=$(BIN) $(BUILD)/unit-tests
	@sh tests/structure.sh

# Installs missing Debian packages (apt-get, as root or via sudo) and npm packages.
deps:
	@sh tests/deps.sh

# The page Mosquitto serves: web/page.html with its stylesheet and scripts inline.
web: web/index.html
web/index.html: web/page.html web/style.css $(wildcard web/*.js) web/build.sh
	@sh web/build.sh

test: deps
	$(MAKE) all
	$(MAKE) check
	@sh web/build.sh
	@sh tests/run.sh

run: deps
	$(MAKE) all
	@sh web/build.sh
	@sh conf/run.sh

ASAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
asan: deps
	$(MAKE) BUILD=build/asan BIN=build/asan/bin CFLAGS="$(ASAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" all check
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

# ---- install, uninstall, deb ----------------------------------------------------
# Every installed path comes from these variables; files that name a path (the unit,
# the configs, the man pages, mosqlite.pc) are filled in from them at install time.
# SYSCONFDIR is /etc whatever PREFIX is: the service reads /etc/mosqlite/mosqlite.conf
# and the broker /etc/mosquitto/conf.d/. systemd reads units from PREFIX/lib/systemd
# (/usr/local/lib too), but sysusers.d only from /usr/lib and /etc: a PREFIX other than
# /usr puts the user's definition in SYSCONFDIR/sysusers.d. The unit's StateDirectory is
# always under /var/lib: keep LOCALSTATEDIR=/var for a service install.
BINDIR        ?= $(PREFIX)/bin
SBINDIR       ?= $(PREFIX)/sbin
LIBDIR        ?= $(PREFIX)/lib
INCLUDEDIR    ?= $(PREFIX)/include
PKGCONFIGDIR  ?= $(LIBDIR)/pkgconfig
DATADIR       ?= $(PREFIX)/share
PKGDATADIR    ?= $(DATADIR)/mosqlite
MANDIR        ?= $(DATADIR)/man
DOCDIR        ?= $(DATADIR)/doc/mosqlite
BASHCOMPDIR   ?= $(DATADIR)/bash-completion/completions
SYSCONFDIR    ?= /etc
LOCALSTATEDIR ?= /var
UNITDIR       ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR   ?= $(if $(filter /usr,$(PREFIX)),$(PREFIX)/lib/sysusers.d,$(SYSCONFDIR)/sysusers.d)
CONFDIR        = $(SYSCONFDIR)/mosqlite
STATEDIR       = $(LOCALSTATEDIR)/lib/mosqlite
SONAME         = libmosqlite.so.0
MANPAGES       = man/mosqlite-writer.8 man/mosqlite-replica.8 man/mosqlite-pub.1 man/mosqlite.1 \
                 man/mosqlite-work.1 man/libmosqlite.3
D              = $(DESTDIR)

# sed script that fills in @NAME@ in the *.in files.
SUBST = sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@PREFIX@|$(PREFIX)|g' \
        -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
        -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@PKGDATADIR@|$(PKGDATADIR)|g' \
        -e 's|@DOCDIR@|$(DOCDIR)|g' -e 's|@CONFDIR@|$(CONFDIR)|g' -e 's|@STATEDIR@|$(STATEDIR)|g' \
        -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@SYSUSERSDIR@|$(SYSUSERSDIR)|g' \
        -e 's|@UNITDIR@|$(UNITDIR)|g'

.PHONY: uninstall deb
install: all web/index.html
	install -d $(D)$(BINDIR) $(D)$(SBINDIR) $(D)$(LIBDIR) $(D)$(INCLUDEDIR) $(D)$(PKGCONFIGDIR) \
	    $(D)$(MANDIR)/man1 $(D)$(MANDIR)/man3 $(D)$(MANDIR)/man8 $(D)$(DOCDIR) \
	    $(D)$(PKGDATADIR)/web $(D)$(CONFDIR)/schema $(D)$(SYSCONFDIR)/mosquitto/conf.d \
	    $(D)$(UNITDIR) $(D)$(SYSUSERSDIR) $(D)$(BASHCOMPDIR)
	install -m 755 $(BIN)/mosqlite-pub $(BIN)/mosqlite $(BIN)/mosqlite-work $(D)$(BINDIR)/
	install -m 644 conf/bash-completion/mosqlite $(D)$(BASHCOMPDIR)/mosqlite
	install -m 755 $(BIN)/mosqlite-writer $(D)$(SBINDIR)/
	install -m 755 $(BIN)/mosqlite-replica $(D)$(SBINDIR)/
	install -m 644 $(BUILD)/libmosqlite.a $(D)$(LIBDIR)/
	install -m 644 $(BUILD)/libmosqlite.so $(D)$(LIBDIR)/libmosqlite.so.$(VERSION)
	ln -sf libmosqlite.so.$(VERSION) $(D)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(D)$(LIBDIR)/libmosqlite.so
	install -m 644 publisher/mosqlite.h $(D)$(INCLUDEDIR)/
	$(SUBST) publisher/mosqlite.pc.in > $(D)$(PKGCONFIGDIR)/mosqlite.pc
	for m in $(MANPAGES); do \
	    $(SUBST) $$m.in > $(D)$(MANDIR)/man$${m##*.}/$${m#man/} || exit 1; done
	install -m 644 README.md docs/*.md $(D)$(DOCDIR)/
	install -m 644 web/index.html $(D)$(PKGDATADIR)/web/
	install -m 644 mosquitto.conf.example $(D)$(PKGDATADIR)/
	install -d $(D)$(PKGDATADIR)/secure
	$(SUBST) conf/secure/mosquitto.conf > $(D)$(PKGDATADIR)/secure/mosquitto.conf
	install -m 644 conf/secure/acl $(D)$(PKGDATADIR)/secure/
	install -m 755 conf/secure/make-passwd.sh conf/secure/make-certs.sh $(D)$(PKGDATADIR)/secure/
	install -m 644 conf/secure/README.md $(D)$(PKGDATADIR)/secure/
	install -d $(D)$(PKGDATADIR)/hooks
	install -m 755 conf/hooks/notify-webhook $(D)$(PKGDATADIR)/hooks/
	@# Config files: an existing one is the administrator's and is kept.
	@[ -f $(D)$(CONFDIR)/mosqlite.conf ] || { echo "install $(CONFDIR)/mosqlite.conf"; \
	    sed -e 's|^# db data/mosqlite.db.*|db $(STATEDIR)/mosqlite.db|' \
	        -e 's|^# schema conf/schema.*|schema $(CONFDIR)/schema|' conf/mosqlite.conf \
	        > $(D)$(CONFDIR)/mosqlite.conf; }
	@for f in conf/schema/*.sql; do [ -f $(D)$(CONFDIR)/schema/$${f##*/} ] || \
	    { echo "install $(CONFDIR)/schema/$${f##*/}"; install -m 644 $$f $(D)$(CONFDIR)/schema/; }; done
	@[ -f $(D)$(SYSCONFDIR)/mosquitto/conf.d/mosqlite.conf ] || \
	    { echo "install $(SYSCONFDIR)/mosquitto/conf.d/mosqlite.conf"; \
	      $(SUBST) conf/mosquitto/mosqlite.conf.in > $(D)$(SYSCONFDIR)/mosquitto/conf.d/mosqlite.conf; }
	$(SUBST) conf/systemd/mosqlite-writer.service.in > $(D)$(UNITDIR)/mosqlite-writer.service
	install -m 644 conf/systemd/mosqlite.sysusers $(D)$(SYSUSERSDIR)/mosqlite.conf

# Removes what install put in place, but keeps the configuration (mosqlite.conf, the
# schema, the broker drop-in) and the database, like a package removed without purge.
uninstall:
	rm -f $(D)$(BINDIR)/mosqlite-pub $(D)$(BINDIR)/mosqlite $(D)$(BINDIR)/mosqlite-work \
	    $(D)$(MANDIR)/man1/mosqlite-work.1 $(D)$(BASHCOMPDIR)/mosqlite \
	    $(D)$(MANDIR)/man1/mosqlite.1 $(D)$(SBINDIR)/mosqlite-writer $(D)$(SBINDIR)/mosqlite-replica \
	    $(D)$(LIBDIR)/libmosqlite.a $(D)$(LIBDIR)/libmosqlite.so $(D)$(LIBDIR)/$(SONAME) \
	    $(D)$(LIBDIR)/libmosqlite.so.$(VERSION) $(D)$(INCLUDEDIR)/mosqlite.h \
	    $(D)$(PKGCONFIGDIR)/mosqlite.pc $(D)$(MANDIR)/man8/mosqlite-writer.8 $(D)$(MANDIR)/man8/mosqlite-replica.8 \
	    $(D)$(MANDIR)/man1/mosqlite-pub.1 $(D)$(MANDIR)/man3/libmosqlite.3 \
	    $(D)$(UNITDIR)/mosqlite-writer.service $(D)$(SYSUSERSDIR)/mosqlite.conf
	rm -rf $(D)$(DOCDIR) $(D)$(PKGDATADIR)

# A Debian package of the same files, built with dpkg-buildpackage and debhelper from
# debian/; the .deb files land in build/deb/.
deb:
	@sh debian/build.sh

clean:
	rm -rf build bin
