#!/usr/bin/env python3
"""KCSAN reports of a VM console (make test-race).

  kcsan.py split CONSOLE REPORTS REST
      write the console's KCSAN reports (each from its '=====' line to the
      closing one) to REPORTS and every other line to REST, so that the
      splat check of tooling/vm sees all but them; prints how many.
  kcsan.py check REPORTS NM_OUTPUT...
      TAP, one line per distinct report (by its title): 'not ok' when it is
      ours, 'ok ... # listed' when it is elsewhere in the kernel.  Ours: a
      function of the title, or of the top three frames of either access's
      stack (a racing access inside an out-of-line helper such as memcpy),
      is one that 'nm' lists for drivers/vfio/ or samples/vfio-mdev/.
"""
import re
import sys

RULE = re.compile(r'^(\[[ 0-9.]+\] )?={40,}\s*$')
TITLE = re.compile(r'BUG: KCSAN: ([a-z-]+) in (.*)$')
FRAME = re.compile(r'^(?:\[[ 0-9.]+\] )?\s+([A-Za-z_][A-Za-z0-9_.]*)\+0x[0-9a-f]+/0x[0-9a-f]+')
ACCESS = re.compile(r'^(?:\[[ 0-9.]+\] )?(read|write|race at|value changed)')


def split(console, reports, rest):
    lines = open(console, errors='replace').read().splitlines(keepends=True)
    out, other, n, i = [], [], 0, 0
    while i < len(lines):
        if RULE.match(lines[i]) and i + 1 < len(lines) and 'BUG: KCSAN:' in lines[i + 1]:
            j = i + 1
            while j < len(lines) and not RULE.match(lines[j]):
                j += 1
            out.extend(lines[i:j + 1])
            n += 1
            i = j + 1
            continue
        other.append(lines[i])
        i += 1
    open(reports, 'w').writelines(out)
    open(rest, 'w').writelines(other)
    print(n)


def parse(path):
    """[(title, text, [[frames of access 1], [frames of access 2]])]"""
    reports, cur = [], None
    for line in open(path, errors='replace'):
        m = TITLE.search(line)
        if m:
            cur = [f'{m.group(1)} in {m.group(2).strip()}', [], [],
                   [f.strip() for f in m.group(2).split('/')]]
            reports.append(cur)
            continue
        if cur is None:
            continue
        cur[1].append(line.rstrip('\n'))
        if ACCESS.match(line):
            cur[2].append([])
            continue
        m = FRAME.match(line)
        if m and cur[2]:
            cur[2][-1].append(m.group(1))
    return reports


def ours(nm_files):
    syms = set()
    for path in nm_files:
        for line in open(path):
            parts = line.split()
            if len(parts) >= 3 and parts[1] in 'tTwW':
                syms.add(parts[2])
    return syms


def check(reports_path, nm_files):
    syms = ours(nm_files)
    seen = {}
    for title, text, stacks, funcs in parse(reports_path):
        top = set(funcs)
        for st in stacks:
            top.update(st[:3])
        mine = sorted(f.split('.')[0] for f in top if f.split('.')[0] in syms)
        if title in seen:
            seen[title][0] += 1
            continue
        seen[title] = [1, mine, text]
    n = bad = 0
    for title, (count, mine, text) in seen.items():
        n += 1
        times = f' ({count} reports)' if count > 1 else ''
        if mine:
            bad += 1
            print(f'not ok {n} KCSAN {title}{times}: in drivers/vfio or '
                  f'samples/vfio-mdev ({", ".join(mine)})')
            for t in text[:40]:
                print(f'#   {t}')
        else:
            print(f'ok {n} KCSAN {title}{times} # SKIP listed: elsewhere in the kernel')
    if not n:
        print('ok 1 no KCSAN report')
        n = 1
    print(f'1..{n}')
    return 1 if bad else 0


if __name__ == '__main__':
    if len(sys.argv) == 5 and sys.argv[1] == 'split':
        split(*sys.argv[2:])
    elif len(sys.argv) >= 4 and sys.argv[1] == 'check':
        sys.exit(check(sys.argv[2], sys.argv[3:]))
    else:
        sys.exit(__doc__)
