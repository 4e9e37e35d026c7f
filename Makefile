# p2plab — top-level build.  `make help` lists the targets.
# Every target installs what it needs (apt packages, Maven deps, sources) and caches big artefacts under
# ~/.cache/p2plab (safe to delete). Knobs: QEMU_SRC=/path/to/qemu, KERNEL_SRC=/path/to/linux,
# PROFILE=debug (debug guest kernel, slow), SHARD=K/N, DURATIONS=previous-junit.xml (balances SHARD),
# SUITE=dir, OUT=dir, APPEND="kernel args" (make boot), JOBS=N|auto (cases at once in make run; auto: host CPUs / 2).
SHELL := /bin/bash
.DEFAULT_GOAL := help
export QEMU_SRC KERNEL_SRC PROFILE

SUITE      ?= scenarios
OUT        ?= build/runs/$(shell date +%Y%m%d-%H%M%S)
SHARD      ?=
JOBS       ?= auto
DURATIONS  ?=
shard_arg   = $(if $(SHARD),--shard $(SHARD) $(if $(DURATIONS),--durations $(DURATIONS)))

.PHONY: guest-smoke lint help deps qemu qemu-test kmod guest controller controller-test guest-test hmm-test stress-test svm-test debug-test \
        run test boot console bench soak prove clean distclean

help: ## this list
	@printf 'p2plab — HMM and PCI P2PDMA lab\n\n  make run     boot the lab and run the default scenario suite\n  make test    the whole test suite (what CI runs)\n\n'
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | awk -F'\t' '{printf "  %-16s %s\n", $$1, $$2}'

deps: ## install host packages (Debian bookworm) the lab needs
	@scripts/deps.sh

qemu: deps ## build QEMU with the p2plab device (cached)
	@scripts/build-qemu.sh >/dev/null

qemu-test: qemu ## the device's qtests
	@scripts/qemu-test.sh

kmod: deps ## build p2plab.ko against the guest kernel (cached)
	@scripts/build-kmod.sh >/dev/null

guest: deps ## guest kernel + initramfs with p2plab.ko, qemu-ga and test programs (cached)
	@scripts/build-guest.sh >/dev/null

controller: deps ## build the Java controller (the ./p2plab launcher builds its jar when the sources changed)
	@./p2plab --version >/dev/null

controller-test: deps qemu ## controller unit + integration tests (real QEMU)
	@scripts/controller-test.sh

guest-test: qemu guest controller ## P2P guest tests across topologies (scenarios/guest)
	@scripts/lab-env.sh ./p2plab suite scenarios/guest --out $(OUT)/guest --junit $(OUT)/guest/junit.xml $(shard_arg)

hmm-test: qemu guest controller ## HMM: upstream hmm-tests + p2plab HMM tests (scenarios/hmm)
	@scripts/lab-env.sh ./p2plab suite scenarios/hmm --out $(OUT)/hmm --junit $(OUT)/hmm/junit.xml $(shard_arg)

stress-test: qemu guest controller ## seeded HMM race stress, short runs (scenarios/stress)
	@scripts/lab-env.sh ./p2plab suite scenarios/stress --out $(OUT)/stress --junit $(OUT)/stress/junit.xml $(shard_arg)

svm-test: qemu guest controller ## SVM: device faults on process memory resolved by HMM (scenarios/svm)
	@scripts/lab-env.sh ./p2plab suite scenarios/svm --out $(OUT)/svm --junit $(OUT)/svm/junit.xml $(shard_arg)

debug-test: qemu controller ## the debug kernel (KASAN, lockdep, DEBUG_VM, kmemleak; built once, cached): guest P2P + HMM + SVM selection
	@scripts/debug-test.sh $(OUT)/debug

run: qemu guest controller ## THE main job: boot the lab, run the default suite, print a summary
	@scripts/lab-env.sh ./p2plab suite $(SUITE) --out $(OUT) --junit $(OUT)/junit.xml --jobs $(JOBS) $(shard_arg)

test: deps ## everything CI runs: lint, controller, qtests, guest P2P, HMM, stress, SVM, debug kernel
	@scripts/test-all.sh

guest-smoke: qemu guest controller ## quick check of a build: boot, device/DMA tests, bandwidth, driver reload (INTx, MSI-X)
	@scripts/lab-env.sh ./p2plab run scenarios/guest/smoke.yaml --out $(OUT)/smoke --junit $(OUT)/smoke/junit.xml

boot: qemu guest controller ## boot one VM with the default topology, serial console here (Ctrl-a x quits)
	@scripts/lab-env.sh ./p2plab boot --machine scenarios/machines/default.yaml $(if $(APPEND),--append "$(APPEND)")

console: qemu guest controller ## interactive QMP console on a freshly booted default VM
	@scripts/lab-env.sh ./p2plab console --spec scenarios/machines/default.yaml

prove: qemu controller ## mutation proofs of the seed guards (docs/seed-guards.md): MUTANT=name|regex, KERNEL_SRC=built tree
	@scripts/prove.sh $(OUT)/prove

DURATION ?= 60
soak: qemu guest controller ## seeded HMM race stress (scenarios/stress), DURATION seconds per case (default 60)
	@P2PLAB_STRESS_SECONDS=$(DURATION) P2PLAB_STRESS_STEP_TIMEOUT=$$(( $(DURATION) + 300 )) \
	 P2PLAB_STRESS_TIMEOUT=$$(( $(DURATION) / 60 + 10 ))m \
	 scripts/lab-env.sh ./p2plab suite scenarios/stress --out $(OUT)/soak --junit $(OUT)/soak/junit.xml; rc=$$?; \
	 grep -h '^STRESS ' $(OUT)/soak/*/guest-stress.stdout 2>/dev/null; exit $$rc

bench: qemu guest controller ## benchmarks: DMA bandwidth vs size, QMP throughput vs depth, HMM migration vs test_hmm, SVM faults, suite time --jobs 1 vs 2 (report.html)
	@scripts/bench.sh

clean: ## remove build outputs in the tree (keeps ~/.cache/p2plab)
	rm -rf build controller/target

distclean: clean ## also drop every cached artefact (~/.cache/p2plab)
	@c=$${P2PLAB_CACHE:-$$HOME/.cache/p2plab}; \
	 grep -o " $$c/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l; \
	 rm -rf "$$c"

lint: deps controller ## static checks: compose.yaml, docs vs header, named scripts exist, scenario files
	@scripts/lint.sh
