# MicroVMM — top-level entry points.
#
#   make demo   set up, regenerate and check the generated files, prove the catalogue,
#               build the default guest and boot it on KVM (nested host where needed)
#   make test   set up, then run the test suite
#
# Set-up installs everything the project needs on a fresh Debian machine (as root): Debian
# packages through apt, Python packages into .venv from PyPI.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
APT_PACKAGES := gcc make python3-venv qemu-system-x86 busybox-static cpio xz-utils zstd nasm \
                acpica-tools kmod frama-c-base why3 z3
STAMP_APT := $(VENV)/.apt-done
STAMP_PIP := $(VENV)/.pip-done

.PHONY: setup demo test prove boot guest generated check-generated lint clean bench

setup: $(STAMP_PIP)

$(STAMP_APT):
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	  | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing Debian packages:" $$missing; \
	  if [ "$$(id -u)" != 0 ]; then echo "setup: error: need root to install:" $$missing >&2; exit 1; fi; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    --no-install-recommends $$missing; \
	fi
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	@touch $@

$(STAMP_PIP): $(STAMP_APT) pyproject.toml setup.py shim/mvshim.c shim/mvshim.h shim/build_shim.py
	$(PY) -m pip install -q --upgrade pip setuptools wheel cffi
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

generated: setup
	$(PY) -m mvtool gen
	$(PY) -m mvtool extract

check-generated: setup
	$(PY) -m mvtool gen --check
	$(PY) -m mvtool extract --check

prove: setup
	$(PY) -m mvtool prove

guest: setup
	$(PY) -m mvtool guest build

boot: guest
	$(PY) -m mvtool boot

demo: setup check-generated prove guest
	$(PY) -m mvtool boot

# The guest is built first so that the Linux boot tests run rather than skip.
test: setup check-generated guest
	$(PY) -m pytest -q -rs

lint: setup
	$(VENV)/bin/ruff check py tests

bench: setup
	$(PY) -m mvtool bench prove
	$(PY) -m mvtool bench boot

clean:
	rm -rf build _cache .pytest_cache py/*.egg-info
