# The single entry point for developers and CI. Every target that runs something first runs
# `setup`, which is idempotent and takes about a second on a ready machine, so a target works
# the same on a fresh Debian 12 machine as on a developer's.
#
#   make test                 all stages from cold caches: distclean, setup, then sanity units
#                             integration lab (so a run here is a run on a new machine)
#   make sanity|units|integration|lab
#   make demo [INVENTORY=...] the lab demo (on the lab, or on the hosts of INVENTORY)
#   make bench [N=...]        every bench/*.py and bench/*.sh
#   make clean                tear the lab down and remove the build copy
#   make distclean            remove every cache and state the tooling and tests made (labs,
#                             templates, venvs, images, build copy); Debian packages stay

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Handed to the scripts through the environment, and only when given so that the scripts'
# own defaults apply otherwise (GNU make exports command-line variables anyway: this says so).
ifdef INVENTORY
export INVENTORY
endif
ifdef N
export N
endif

ENV := . tests/env.sh

.PHONY: help setup test sanity units integration lab demo bench clean distclean

help:
	@sed -n 's/^#   make/make/p' Makefile

setup:
	tests/setup-host.sh

# Not `test: distclean setup`: prerequisites carry no order under make -j.
test:
	tests/distclean.sh
	tests/setup-host.sh
	tests/run.sh all

sanity units integration lab: setup
	tests/run.sh $@

demo: setup
	@[ -f tests/lab/demo.sh ] || { echo "tests/lab/demo.sh does not exist yet" >&2; exit 1; }
	bash tests/lab/demo.sh

# A benchmark measures the collection as ansible sees it: the build copy, the venv's python.
bench: setup
	@$(ENV); \
	tests/sync-collection.sh >/dev/null; \
	shopt -s nullglob; \
	scripts=(bench/*.py bench/*.sh); \
	[ $${#scripts[@]} -gt 0 ] || { echo "no bench/*.py or bench/*.sh to run" >&2; exit 1; }; \
	rc=0; \
	for s in "$${scripts[@]}"; do \
	    echo "== $$s"; \
	    case "$$s" in \
	        *.py) python "$$s" || rc=1 ;; \
	        *.sh) bash "$$s" || rc=1 ;; \
	    esac; \
	done; \
	exit $$rc

clean:
	@$(ENV); \
	if [ -f tests/lab/lab.sh ]; then bash tests/lab/lab.sh down; fi; \
	echo "removing $$DEBVIRT_BUILD"; \
	rm -rf "$$DEBVIRT_BUILD"

distclean:
	tests/distclean.sh
