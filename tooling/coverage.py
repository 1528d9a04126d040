#!/usr/bin/env python3
"""Coverage report of a make coverage run (tooling/test --coverage).

  coverage.py KOUT GCOV_DIR OUT

KOUT is the gcov kernel's build directory (its .gcno files), GCOV_DIR the
.gcda files the guest copied out of /sys/kernel/debug/gcov (tooling/guest/
init), by the build's absolute path.  Writes OUT/coverage.info (lcov),
OUT/html/index.html (genhtml), OUT/summary.txt (the tables and every line
still uncovered) and prints TAP, one line per goal:

  - 100 % of the lines of vfio_dirty.c;
  - >= 95 % of the lines the series adds or changes in vfio_iommu_type1.c
    and 100 % of those in vfio_main.c, container.c and the two vfio.h;
  - >= 90 % of migdev.c.

The lines the series adds or changes are those of 'diff -U0' between the
pristine base and the assembled tree (the patches' net effect).
"""
import os
import re
import shutil
import subprocess
import sys

# file (path in the tree) -> (goal in %, of 'all' lines or the 'changed' ones)
GOALS = [
    ('drivers/vfio/vfio_dirty.c', 100.0, 'all'),
    ('drivers/vfio/vfio_iommu_type1.c', 95.0, 'changed'),
    ('drivers/vfio/vfio_main.c', 100.0, 'changed'),
    ('drivers/vfio/container.c', 100.0, 'changed'),
    ('drivers/vfio/vfio.h', 100.0, 'changed'),
    ('include/linux/vfio.h', 100.0, 'changed'),
    ('samples/vfio-mdev/migdev.c', 90.0, 'all'),
]
# the files of the per-file table: what the series adds, what it changes
TABLE = ['drivers/vfio/vfio_dirty.c', 'drivers/vfio/vfio_dirty.h',
         'drivers/vfio/vfio_iommu_type1.c', 'drivers/vfio/vfio_main.c',
         'drivers/vfio/container.c', 'drivers/vfio/group.c', 'drivers/vfio/vfio.h',
         'include/linux/vfio.h', 'samples/vfio-mdev/migdev.c']


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode:
        sys.exit(f'{cmd[0]} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}')
    return r.stdout


def tree_rel(path, roots):
    path = os.path.normpath(path)
    for r in roots:
        if path.startswith(r + '/'):
            return path[len(r) + 1:]
    return None


def parse_info(path, roots):
    """{tree path: {'DA': {line: hits}, 'BR': {line: [taken...]}, 'FN': {name: hits}}}"""
    files, cur = {}, None
    for line in open(path):
        line = line.rstrip('\n')
        if line.startswith('SF:'):
            rel = tree_rel(line[3:], roots)
            cur = files.setdefault(rel, {'DA': {}, 'BR': {}, 'FN': {}}) if rel else None
        elif cur is None:
            continue
        elif line.startswith('DA:'):
            n, hits = line[3:].split(',')[:2]
            cur['DA'][int(n)] = cur['DA'].get(int(n), 0) + int(hits)
        elif line.startswith('BRDA:'):
            n, _blk, _br, taken = line[5:].split(',')
            cur['BR'].setdefault(int(n), []).append(0 if taken == '-' else int(taken))
        elif line.startswith('FNDA:'):
            hits, name = line[5:].split(',', 1)
            cur['FN'][name] = cur['FN'].get(name, 0) + int(hits)
    return files


def changed_lines(base, tree, rel):
    """Line numbers, in the tree's file, that the series adds or changes."""
    a, b = os.path.join(base, rel), os.path.join(tree, rel)
    if not os.path.exists(a):
        return None         # a file the series adds: all of it
    out = subprocess.run(['diff', '-U0', a, b], capture_output=True, text=True).stdout
    lines = set()
    for m in re.finditer(r'^@@ -\S+ \+(\d+)(?:,(\d+))? @@', out, re.M):
        start, count = int(m.group(1)), int(m.group(2) or 1)
        lines.update(range(start, start + count))
    return lines


def figures(data, only=None):
    da = {n: h for n, h in data['DA'].items() if only is None or n in only}
    br = [t for n, ts in data['BR'].items() if only is None or n in only for t in ts]
    return (sum(1 for h in da.values() if h), len(da),
            sum(1 for t in br if t), len(br),
            sum(1 for h in data['FN'].values() if h), len(data['FN']))


def pct(hit, total):
    return f'{100.0 * hit / total:5.1f} %' if total else '    - '


def row(name, f, with_fn=True):
    lh, lf, bh, bf, fh, ff = f
    fn = f'{fh:>4}/{ff:<4} {pct(fh, ff)}' if with_fn else ''
    return f'{name:<34} {lh:>5}/{lf:<5} {pct(lh, lf)}  {bh:>5}/{bf:<5} {pct(bh, bf)}  {fn}'


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    kout, gcda_dir, out = (os.path.abspath(p) for p in sys.argv[1:])
    cache = os.path.dirname(kout)
    bver = kout.split('build-coverage-', 1)[1]
    tree = os.path.join(cache, f'tree-{bver}')
    base = os.path.join(cache, f'base-{bver}', 'linux')
    shutil.rmtree(out, ignore_errors=True)
    work = os.path.join(out, 'gcov')
    os.makedirs(work)
    # each .gcda beside its .gcno, as gcov wants them
    n = 0
    for d, _dirs, names in os.walk(gcda_dir):
        for name in names:
            if not name.endswith('.gcda'):
                continue
            src = os.path.join(d, name)
            rel = os.path.relpath(src, gcda_dir)
            at = '/' + rel
            if not at.startswith(kout + '/'):
                continue
            rel = at[len(kout) + 1:]
            gcno = os.path.join(kout, rel[:-5] + '.gcno')
            if not os.path.exists(gcno):
                continue
            os.makedirs(os.path.join(work, os.path.dirname(rel)), exist_ok=True)
            shutil.copy(src, os.path.join(work, rel))
            shutil.copy(gcno, os.path.join(work, rel[:-5] + '.gcno'))
            n += 1
    if not n:
        print('not ok 1 coverage data: no .gcda of the build came out of the VM')
        print('1..1')
        return 1
    info = os.path.join(out, 'coverage.info')
    run(['lcov', '--quiet', '--capture', '--directory', work, '--base-directory', kout,
         '--rc', 'lcov_branch_coverage=1', '--output-file', info])
    run(['genhtml', '--quiet', '--branch-coverage', '--legend', '--title',
         'VFIO migration series', '--output-directory', os.path.join(out, 'html'), info])
    roots = [os.path.realpath(tree), tree, os.path.realpath(base), base, kout]
    files = parse_info(info, roots)

    lines = []
    head = f'{"file":<34} {"lines":>18}  {"branches":>18}  {"functions":>15}'
    lines += ['== coverage of every line, per file', head]
    for rel in TABLE:
        if rel in files:
            lines.append(row(rel, figures(files[rel])))
    lines += ['', '== the lines the series adds or changes in files of 6.12', head[:73]]
    changed = {}
    for rel in TABLE:
        ch = changed_lines(base, tree, rel)
        if not ch or rel not in files:
            continue        # added by the series (above), or not changed
        changed[rel] = ch
        lines.append(row(rel, figures(files[rel], ch), with_fn=False))

    tap, bad = [], 0
    for rel, goal, scope in GOALS:
        if rel not in files:
            if scope == 'changed':
                tap.append(f'ok {len(tap) + 1} {rel}: no executable line # SKIP no line it adds or changes runs code')
                continue
            bad += 1
            tap.append(f'not ok {len(tap) + 1} {rel}: no coverage data')
            continue
        only = changed.get(rel, set()) if scope == 'changed' else None
        lh, lf, bh, bf, _fh, _ff = figures(files[rel], only)
        what = 'of the lines the series adds or changes' if scope == 'changed' else 'of the lines'
        got = 100.0 * lh / lf if lf else 100.0
        ok = got >= goal
        bad += not ok
        tap.append(f'{"ok" if ok else "not ok"} {len(tap) + 1} {rel}: {lh}/{lf} '
                   f'{what} ({got:.1f} %, goal {goal:g} %), branches {bh}/{bf} ({pct(bh, bf).strip()})')
        missed = sorted(n for n, h in files[rel]['DA'].items()
                        if not h and (only is None or n in only))
        if missed:
            src = open(os.path.join(tree, rel), errors='replace').read().splitlines()
            lines += ['', f'== {rel}: lines never run' + (' (of those the series adds or changes)' if only else '')]
            lines += [f'{n:>6}: {src[n - 1].strip()}' for n in missed]
    lines += ['', f'HTML: {os.path.join(out, "html", "index.html")}']
    open(os.path.join(out, 'summary.txt'), 'w').write('\n'.join(lines) + '\n')
    print('\n'.join(tap))
    print(f'1..{len(tap)}')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
