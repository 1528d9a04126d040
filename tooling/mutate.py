#!/usr/bin/env python3
"""make mutate: run the mutants of tooling/mutants against the suite.

  mutate.py list
  mutate.py run TREE MOUT KSFT RUNDIR [ID...]

For each mutant (all, or the IDs given): write it into the assembled tree
TREE, build the kernel incrementally in MOUT (a copy of the test kernel's
build directory, so that only the mutated file recompiles), put the file
back, boot the mutant and run the suite with VFIO_FIRST_FAILURE: KUnit (at
boot), the kselftests fastest first, then both e2e migrations, stopping at
the first failure.  A kernel splat, a hang (the VM's time limit) or a boot
that never reaches the tests also kill it.  A mutant that does not build
is a catalogue error and fails the run.  Prints one line per mutant, the
score and the survivors.  The series without a mutant (M00) runs first and
must pass.  Exit status 1 when the score is under 95 % or a
survivor is not argued equivalent in the catalogue.
"""
import os
import re
import subprocess
import sys
import time

TOOLING = os.path.dirname(os.path.abspath(__file__))
CATALOGUE = os.path.join(TOOLING, 'mutants')
GOAL = 95.0
# the kselftests, fastest first: a mutant dies as soon as possible (tests
# the kselftest Makefile lists that are not here run after these)
ORDER = ['vfio_dirty_fail_nth_test', 'vfio_migration_test', 'vfio_module_test',
         'vfio_dirty_test', 'vfio_stress_test', 'vfio_fuzz_bar_test',
         'vfio_fuzz_mig_test', 'vfio_fuzz_type1_test', 'vfio_dirty_pin_test']


class Mutant:
    def __init__(self, ident, title):
        self.id, self.title = ident, title
        self.file = None
        self.old, self.new = [], []
        self.equivalent = None
        self.expect = None


def parse(path=CATALOGUE):
    mutants, cur = [], None
    for n, line in enumerate(open(path), 1):
        line = line.rstrip('\n')
        m = re.match(r'^== (M\d+) (.*)$', line)
        if m:
            cur = Mutant(m.group(1), m.group(2))
            mutants.append(cur)
        elif cur is None or not line or line.startswith('#'):
            continue
        elif line.startswith('file: '):
            cur.file = line[6:].strip()
        elif line.startswith('- ') or line == '-':
            cur.old.append(line[2:])
        elif line.startswith('+ ') or line == '+':
            cur.new.append(line[2:])
        elif line.startswith('equivalent: '):
            cur.equivalent = line[12:].strip()
        elif line.startswith('expect: '):
            cur.expect = line[8:].strip()
        else:
            sys.exit(f'{path}:{n}: cannot parse: {line}')
    ids = [m.id for m in mutants]
    if len(set(ids)) != len(ids):
        sys.exit(f'{path}: duplicate mutant IDs')
    for m in mutants:
        if not m.file or not m.old:
            sys.exit(f'{path}: {m.id} needs a file: and - lines')
    return mutants


def put(path, data):
    """Replace the file (never write through a hard link to the base)."""
    tmp = path + '.mutate-tmp'
    with open(tmp, 'w') as f:
        f.write(data)
    os.rename(tmp, path)


def jobs():
    return os.environ.get('JOBS', str(os.cpu_count() + 1))


def run_one(m, tree, mout, ksft, rundir):
    t0 = time.time()
    if m.file:          # M00, the series as it is, changes nothing
        path = os.path.join(tree, m.file)
        orig = open(path).read()
        old, new = '\n'.join(m.old), '\n'.join(m.new)
        if orig.count(old) != 1:
            return 'error', f'its text occurs {orig.count(old)} times in {m.file}', 0
        put(path, orig.replace(old, new))
    try:
        b = subprocess.run(['make', '-s', '-C', tree, f'O={mout}', 'CC=ccache gcc',
                            'HOSTCC=ccache gcc', f'-j{jobs()}', 'bzImage', 'modules'],
                           capture_output=True, text=True)
    finally:
        if m.file:
            put(path, orig)
    err = [ln for ln in (b.stdout + b.stderr).splitlines() if 'error' in ln or 'warning:' in ln]
    if b.returncode or err:
        return 'error', 'does not build cleanly: ' + (err[0] if err else b.stderr[-300:]), time.time() - t0
    run = os.path.join(rundir, m.id)
    os.makedirs(run, exist_ok=True)
    listed = open(os.path.join(ksft, 'tests.list')).read().split()
    # the fast ones first, then whatever else the kselftest Makefile lists
    order = [t for t in ORDER if t in listed] + [t for t in listed if t not in ORDER]
    env = dict(os.environ,
               VFIO_FIRST_FAILURE='/mnt/killed',
               VFIO_SELFTESTS=' '.join(order),
               VFIO_E2E='e2e-migration viommu-migration',
               VFIO_SELFTEST_TIMEOUT='300',
               MIGDEV_KO=os.path.join(mout, 'samples/vfio-mdev/migdev.ko'))
    v = subprocess.run([os.path.join(TOOLING, 'vm'), '-q', '-t', '900', '-k',
                        os.path.join(mout, 'arch/x86/boot/bzImage'), '-r', run, '--',
                        os.path.join(TOOLING, 'guest', 'selftests.sh'), ksft],
                       capture_output=True, text=True, env=env)
    took = time.time() - t0
    killed = os.path.join(run, 'killed')
    if os.path.exists(killed):
        # the first failing test (a splat it caused is in the run directory)
        what = [ln.strip() for ln in open(killed) if ln.strip()]
        return 'killed', ': '.join(what[:2])[:160], took
    splat = open(os.path.join(run, 'splat.txt'), errors='replace').read() \
        if os.path.exists(os.path.join(run, 'splat.txt')) else ''
    first = next((ln for ln in splat.splitlines()
                  if re.search(r'BUG|WARNING|Oops|KASAN|kmemleak|locking|blocked|panic', ln)), '')
    first = re.sub(r'^\[[ 0-9.]+\] ', '', first).strip()[:100]
    if v.returncode == 125:
        return 'killed', 'kernel splat: ' + first, took
    if v.returncode == 124:
        return 'killed', 'hang: the VM did not finish in 900 s', took
    if v.returncode:
        return 'killed', f'the guest never finished (VM exit {v.returncode})' + \
            (f', kernel splat: {first}' if first else ''), took
    return 'survived', '', took


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == 'list':
        for m in parse():
            print(f'{m.id} {m.title}  [{m.file}]')
        return 0
    if len(sys.argv) < 6 or sys.argv[1] != 'run':
        sys.exit(__doc__)
    tree, mout, ksft, rundir = sys.argv[2:6]
    mutants = parse()
    want = sys.argv[6:]
    if want:
        unknown = set(want) - {m.id for m in mutants}
        if unknown:
            sys.exit(f'no such mutants: {" ".join(sorted(unknown))}')
        mutants = [m for m in mutants if m.id in want]
    t_all = time.time()
    # the suite must pass on the tree as it is, or every mutant 'dies'
    base = Mutant('M00', 'no mutant: the suite passes on the series as it is')
    state, why, took = run_one(base, tree, mout, ksft, rundir)
    print(f'M00 {"passed" if state == "survived" else "FAILED"} {took:4.0f} s  {base.title}'
          + (f'\n        {why}' if why else ''), flush=True)
    if state != 'survived':
        print('the suite fails without a mutant: no score')
        return 1
    results = []
    print(f'{len(mutants)} mutants; each: build, boot, suite until the first failure', flush=True)
    for i, m in enumerate(mutants, 1):
        state, why, took = run_one(m, tree, mout, ksft, rundir)
        results.append((m, state, why))
        print(f'[{i}/{len(mutants)}] {m.id} {state:<8} {took:4.0f} s  {m.title}'
              + (f'\n        {why}' if why else ''), flush=True)
        with open(os.path.join(rundir, 'results.txt'), 'a') as f:
            f.write(f'{m.id}\t{state}\t{took:.0f}\t{m.title}\t{why}\n')
    errors = [r for r in results if r[1] == 'error']
    killed = sum(1 for r in results if r[1] == 'killed')
    survived = [r for r in results if r[1] == 'survived']
    scored = killed + len(survived)
    score = 100.0 * killed / scored if scored else 0.0
    print()
    print(f'== {killed} killed, {len(survived)} survived, {len(errors)} catalogue errors '
          f'in {time.time() - t_all:.0f} s: mutation score {score:.1f} % (goal {GOAL:g} %)')
    for m, _s, _w in survived:
        print(f'survivor {m.id} {m.title}')
        print(f'    equivalent: {m.equivalent}' if m.equivalent else
              '    not argued equivalent: write the test that kills it')
    for m, _s, why in errors:
        print(f'catalogue error {m.id}: {why}')
    bad = errors or score < GOAL or any(not m.equivalent for m, _s, _w in survived)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
