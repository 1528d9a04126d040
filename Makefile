# VFIO migration series: project verbs.  Run as root on Debian 12; the
# first run installs what it needs and fills the cache
# ($${XDG_CACHE_HOME:-~/.cache}/vfio-mig, override with VFIO_MIG_CACHE).
.PHONY: help demo test test-vm test-debug test-race coverage mutate kunit selftest fuzz bench viommu build assemble vm edit refresh export clean-cache

help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

## make demo          main job: build, boot the patched kernel, show it working
demo:
	@tooling/demo

## make test          all tests (host checks, KUnit, kselftests); ends 'N passed, N failed'
test:
	@tooling/test

## make test-vm       the VM part of make test only (KUnit, kselftests, e2e): no host checks
test-vm:
	@tooling/test --vm

## make kunit [SUITE=GLOB]  the KUnit suites (or those matching GLOB): build, boot, parse
kunit:
	@SUITE="$(SUITE)" tooling/kunit

## make selftest T=NAME [ARGS='-t TEST']  one kselftest binary, devices set up, ARGS to it
selftest:
	@tooling/selftest "$(T)" $(ARGS)

## make test-debug    the VM tests on a KASAN/UBSAN/hung-task kernel (tooling/debug.config)
test-debug:
	@tooling/test --debug

## make test-race     the stress test, fuzzers, pin and migration tests on a KCSAN kernel (tooling/race.config)
test-race:
	@tooling/test --race

## make coverage      the VM tests on a gcov kernel: line/branch coverage of the series, HTML report
coverage:
	@tooling/test --coverage

## make mutate        the mutants of tooling/mutants against the suite: score, survivors (ARGS='M01 M07')
mutate:
	@tooling/mutate $(ARGS)

## make fuzz         the fuzzer with a long budget (ARGS='--debug -s SEED -n STEPS -t SECONDS')
fuzz:
	@tooling/fuzz $(ARGS)

## make bench         benchmark, kernels without debug options: 6.12 vs the series (ARGS='-b 5 -r 11')
bench:
	@tooling/bench $(ARGS)

## make viommu       vIOMMU live migration, 6.12's tracker vs the series (ARGS='-b 3 -n 10000')
viommu:
	@tooling/viommu $(ARGS)

## make build         assemble the tree and build kernel, headers, kselftests
build:
	@tooling/build

## make assemble      only assemble the tree (base + new files + patches/)
assemble:
	@tooling/assemble

## make vm CMD='...'  run a shell command line inside the test VM on the built kernel
# CMD reaches the guest through the environment, as given: make expands
# none of its $ (nor the shell its quotes)
override CMD := $(value CMD)
export CMD
vm:
	@tooling/vm -- "$(CURDIR)/tooling/guest/cmd.sh" "$$CMD"

## make edit          git tree of the series (one commit per patch) to edit 6.12 files (FORCE=1: drop unrefreshed work)
edit:
	@FORCE="$(FORCE)" python3 tooling/series.py edit

## make refresh       write the edit tree's commits back into patches/ and new files (FORCE=1: over uncommitted edits)
refresh:
	@FORCE="$(FORCE)" python3 tooling/series.py refresh

## make export        git format-patch --cover-letter of the series (OUT=dir: new, empty or an earlier export)
export:
	@python3 tooling/series.py export $(OUT)

## make clean-cache   delete the cache (base, trees, build output, ccache)
clean-cache:
	@. tooling/lib.sh && chmod -R u+w "$$CACHE" && rm -rf "$$CACHE"
