# Builds, installs and packages virtnodedevd.
#
#   make                       cargo build --release
#   make install               install into $(DESTDIR)$(PREFIX), the config into /etc
#   make uninstall             remove what install put there (a changed config stays)
#   make deb                   Debian package, into $(PKGDIR) (dpkg-buildpackage, debhelper)
#   make rpm                   RPM package, into $(PKGDIR) (rpmbuild)
#
# install takes the binary already built at $(BIN) and never runs cargo (it often runs as
# root, where cargo may not be); deb and rpm build it first. With BIN=PATH named, that
# binary is used and cargo is not run at all. The daemon reads
# /etc/libvirt/virtnodedevd.conf whatever PREFIX is, so the config always goes to
# $(DESTDIR)$(SYSCONFDIR)/libvirt.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

PACKAGE = virtnodedevd
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml 2>/dev/null | head -n1)

CARGO ?= cargo
CARGO_TARGET_DIR ?= target
BIN ?= $(CARGO_TARGET_DIR)/release/virtnodedevd
PKGDIR ?= $(CARGO_TARGET_DIR)/packages

DESTDIR ?=
PREFIX ?= /usr
SBINDIR ?= $(PREFIX)/sbin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
DOCDIR ?= $(DATADIR)/doc/$(PACKAGE)
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc

UNITS = virtnodedevd.service virtnodedevd.socket virtnodedevd-ro.socket virtnodedevd-admin.socket
CONF = crates/virconf/virtnodedevd.conf
MAN = man/virtnodedevd.8
DOCS = README.md

INSTALL ?= install

.PHONY: all build install uninstall stage deb rpm

all: build

# With BIN named on the command line or in the environment the binary is taken as built.
build:
ifeq ($(origin BIN),file)
	$(CARGO) build --release --locked --bin virtnodedevd
else
	test -x "$(BIN)"
endif

install:
	@test -x "$(BIN)" || { echo "$(BIN) is missing: run make first (or name it with BIN=)" >&2; exit 1; }
	$(INSTALL) -d "$(DESTDIR)$(SBINDIR)" "$(DESTDIR)$(UNITDIR)" "$(DESTDIR)$(MANDIR)/man8" \
		"$(DESTDIR)$(DOCDIR)" "$(DESTDIR)$(SYSCONFDIR)/libvirt"
	$(INSTALL) -m 0755 "$(BIN)" "$(DESTDIR)$(SBINDIR)/virtnodedevd"
	for u in $(UNITS); do \
		sed 's|/usr/sbin/virtnodedevd|$(SBINDIR)/virtnodedevd|' "data/systemd/$$u" >"$(DESTDIR)$(UNITDIR)/$$u.tmp" && \
		chmod 0644 "$(DESTDIR)$(UNITDIR)/$$u.tmp" && \
		mv -f "$(DESTDIR)$(UNITDIR)/$$u.tmp" "$(DESTDIR)$(UNITDIR)/$$u" || exit 1; \
	done
	$(INSTALL) -m 0644 $(MAN) "$(DESTDIR)$(MANDIR)/man8/virtnodedevd.8"
	$(INSTALL) -m 0644 $(DOCS) "$(DESTDIR)$(DOCDIR)/"
	@# An administrator's config is never overwritten; the shipped one goes beside it.
	if [ -e "$(DESTDIR)$(SYSCONFDIR)/libvirt/virtnodedevd.conf" ] && \
	   ! cmp -s $(CONF) "$(DESTDIR)$(SYSCONFDIR)/libvirt/virtnodedevd.conf"; then \
		$(INSTALL) -m 0644 $(CONF) "$(DESTDIR)$(SYSCONFDIR)/libvirt/virtnodedevd.conf.dist"; \
	else \
		$(INSTALL) -m 0644 $(CONF) "$(DESTDIR)$(SYSCONFDIR)/libvirt/virtnodedevd.conf"; \
	fi

uninstall:
	rm -f "$(DESTDIR)$(SBINDIR)/virtnodedevd" "$(DESTDIR)$(MANDIR)/man8/virtnodedevd.8"
	for u in $(UNITS); do rm -f "$(DESTDIR)$(UNITDIR)/$$u"; done
	for d in $(DOCS); do rm -f "$(DESTDIR)$(DOCDIR)/$$d"; done
	-rmdir "$(DESTDIR)$(DOCDIR)"
	rm -f "$(DESTDIR)$(SYSCONFDIR)/libvirt/virtnodedevd.conf.dist"
	@# A config changed by the administrator stays, as a package's would until purged.
	if cmp -s $(CONF) "$(DESTDIR)$(SYSCONFDIR)/libvirt/virtnodedevd.conf"; then \
		rm -f "$(DESTDIR)$(SYSCONFDIR)/libvirt/virtnodedevd.conf"; \
	fi

# The packages are built from a staged tree holding only what install reads, with the
# binary already built: dpkg-buildpackage writes its results beside the tree it builds.
STAGE = $(PKGDIR)/stage/$(PACKAGE)-$(VERSION)
# debian/ file by file: dpkg-buildpackage run in the checkout leaves its work there.
DEBIAN = debian/changelog debian/control debian/copyright debian/rules debian/source/format
STAGED = Makefile $(DEBIAN) data/systemd $(CONF) $(MAN) $(DOCS) COPYING packaging/rpm/virtnodedevd.spec

stage: build
	rm -rf "$(PKGDIR)/stage"
	mkdir -p "$(STAGE)/bin"
	tar -cf - $(STAGED) | tar -xf - -C "$(STAGE)"
	$(INSTALL) -m 0755 "$(BIN)" "$(STAGE)/bin/virtnodedevd"

deb: stage
	cd "$(STAGE)" && BIN=bin/virtnodedevd dpkg-buildpackage -b -us -uc -d --no-sign
	mkdir -p "$(PKGDIR)"
	cp "$(PKGDIR)/stage/"*.deb "$(PKGDIR)/"

rpm: stage
	mkdir -p "$(PKGDIR)/rpmbuild"
	rpmbuild -bb --nodeps \
		--define "_topdir $(abspath $(PKGDIR)/rpmbuild)" \
		--define "_sourcedir $(abspath $(STAGE))" \
		--define "_builddir $(abspath $(STAGE))" \
		--define "version_from_make $(VERSION)" \
		packaging/rpm/virtnodedevd.spec
	cp "$(PKGDIR)/rpmbuild/RPMS/"*/*.rpm "$(PKGDIR)/"
