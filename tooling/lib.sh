# shellcheck shell=bash
# Common settings for the project tooling. Sourced, never run.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLING=$TOP/tooling
CACHE=${VFIO_MIG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vfio-mig}
BASE_PKG=linux-source-6.12
BASE_TARBALL=/usr/src/$BASE_PKG.tar.xz
JOBS=${JOBS:-$(($(nproc) + 1))}

# Debian packages the tooling needs (build, VM, tests).
DEPS="$BASE_PKG build-essential bc bison flex libelf-dev libssl-dev cpio
      python3 python3-docutils python3-ply python3-git ccache qemu-system-x86 qemu-utils git rsync sparse kmod procps lcov"

# Debug options the bench kernels must not have (tooling/build --bench
# checks its .config against the list; DEBUG_KERNEL alone costs nothing).
DEBUG_OPTIONS='PROVE_LOCKING|LOCKDEP|DEBUG_LOCK_ALLOC|DEBUG_SPINLOCK|DEBUG_MUTEXES|DEBUG_RWSEMS|DEBUG_ATOMIC_SLEEP|DEBUG_PREEMPT|DEBUG_LIST|DEBUG_KMEMLEAK|DEBUG_OBJECTS|DEBUG_VM|DEBUG_PAGEALLOC|SLUB_DEBUG_ON|FAULT_INJECTION|FAILSLAB|FAIL_PAGE_ALLOC|KASAN|UBSAN|KCSAN|KFENCE|LOCK_STAT|PROVE_RCU|KUNIT'

say() { printf '>> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

ensure_deps() {
	local missing=() p
	for p in $DEPS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" = 0 ] || die "missing packages (run as root to install): ${missing[*]}"
	say "installing: ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >/dev/null
}

base_version() {
	dpkg-query -W -f='${Version}' "$BASE_PKG"
}

# Serialise everything that writes the shared cache (assembled tree, build
# output): two checkouts may use the same cache.  The lock is dropped when
# the process exits, so an interrupted run never leaves it held.
lock_cache() {
	[ "${VFIO_MIG_LOCKED:-}" = "$CACHE" ] && return 0   # a parent holds it
	mkdir -p "$CACHE"
	exec 9>"$CACHE/lock"
	flock -n 9 || { say "waiting for another run to release $CACHE/lock"; flock 9; }
	export VFIO_MIG_LOCKED=$CACHE
}

# Paths derived from the base version: set by base_paths after ensure_base.
base_paths() {
	BASE_VER=$(base_version)
	KVER=${BASE_VER%%-*}
	BASE=$CACHE/base-$BASE_VER/linux
	TREE=$CACHE/tree-$BASE_VER
	KOUT=$CACHE/build-$BASE_VER
	GITBASE=$CACHE/git-$BASE_VER
}

# A git repository holding the pristine base as one commit, tagged "base";
# the edit and export trees are worktrees of it.
GIT_IDENT=(-c user.name="VFIO migration series" -c user.email="vfio-migration@example.org")
ensure_gitbase() {
	[ -f "$GITBASE/.git/refs/tags/base" ] && return 0
	say "creating $GITBASE (the base as a git commit; once)"
	rm -rf "$GITBASE.tmp"
	cp -a "$BASE" "$GITBASE.tmp"
	chmod -R u+w "$GITBASE.tmp"
	git -C "$GITBASE.tmp" init -q -b pristine
	git -C "$GITBASE.tmp" add -A -f     # Debian's .gitignore ignores the top level
	git -C "$GITBASE.tmp" "${GIT_IDENT[@]}" commit -q -m "Linux $KVER (Debian $BASE_PKG $BASE_VER)"
	git -C "$GITBASE.tmp" tag base
	mv "$GITBASE.tmp" "$GITBASE"
	git -C "$GITBASE" worktree prune
}

# A build tree at $1: hard links to the base (every write replaces a file),
# made once.
ensure_tree() {
	[ ! -f "$1/Makefile" ] || return 0
	say "creating build tree $1"
	rm -rf "$1.tmp"
	cp -al "$BASE" "$1.tmp"
	find "$1.tmp" -type d -exec chmod u+w {} +
	mv "$1.tmp" "$1"
}

# Environment knobs the host passes into the test VM when they are set
# (tooling/vm writes them into the guest's command file).
VM_ENV_KNOBS="E2E_RUNS VIOMMU_MAPPINGS VFIO_SELFTEST_REQUIRE VFIO_STRESS_SECONDS
	VFIO_SELFTEST_TIMEOUT VFIO_FUZZ_SEED VFIO_FUZZ_ITERS VFIO_FUZZ_SECONDS MIGDEV_KO
	VFIO_SELFTESTS VFIO_E2E VFIO_FIRST_FAILURE"

# TAP output of a stage script, numbered from 1 in this process:
#   tap ok|skip|fail NAME [REASON|DETAIL]; tap_plan at the end.
TAP_N=0
tap() {
	TAP_N=$((TAP_N + 1))
	case $1 in
	ok)   echo "ok $TAP_N $2" ;;
	skip) echo "ok $TAP_N $2 # SKIP $3" ;;
	*)    echo "not ok $TAP_N $2"
	      [ -z "${3:-}" ] || printf '%s\n' "$3" | sed 's/^/#   /' ;;
	esac
}
tap_plan() { echo "1..$TAP_N"; }

# Per-stage wall-clock times of a run: stage NAME COMMAND... runs COMMAND and
# appends "NAME SECONDS" to $STAGE_TIMES (when set); returns its status.
stage() {
	local name=$1 t0 rc=0
	shift
	t0=$(date +%s.%N)
	"$@" || rc=$?
	[ -z "${STAGE_TIMES:-}" ] ||
		printf '%s %.1f\n' "$name" "$(echo "$(date +%s.%N) - $t0" | bc)" >> "$STAGE_TIMES"
	return $rc
}

# prepare once per run: the top-level script calls this, the scripts it
# starts see VFIO_MIG_PREPARED and skip theirs.
prepare_once() {
	[ "${VFIO_MIG_PREPARED:-}" = "$CACHE" ] && return 0
	"$TOOLING/prepare" >&2
	export VFIO_MIG_PREPARED=$CACHE
}
. "$TOOLING/guest/require.sh"
