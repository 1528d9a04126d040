#!/usr/bin/env python3
"""Check that the README and tooling/README.md name only what exists.

usage: check-docs.py [BASE]

Checks, one TAP line each (numbered from 1):
  - every `make VERB` they show is a target of the Makefile;
  - every repository path they name in backquotes exists here, or (given
    the pristine BASE tree) in 6.12 as a file the series patches;
  - every kselftest they name is listed in the selftests' Makefile, every
    KUnit suite is one that drivers/vfio declares;
  - every environment knob they name is read by the tooling;
  - no run directory name of one machine's cache (bench.0MZYn9 and the
    like), which a reader cannot look up.
Exit status 1 when any check failed.
"""
import glob
import os
import re
import sys

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ["README.md", "tooling/README.md"]
# top-level directories and files a backquoted path may start with
ROOTS = ("Documentation/", "drivers/", "include/", "samples/", "tools/",
         "tooling/", "patches/", ".ci/", "Makefile", "scripts/")


def read(path):
    with open(os.path.join(TOP, path)) as f:
        return f.read()


def make_targets():
    targets = set()
    for line in read("Makefile").splitlines():
        m = re.match(r"^([a-z][a-z0-9-]*)\s*:", line)
        if m:
            targets.add(m.group(1))
    return targets


def selftests():
    """Programs the selftests' Makefiles list, by name (variables expanded)."""
    vars_, progs = {}, set()
    for mk in [os.path.join(TOP, "tools/testing/selftests/vfio/Makefile")] + \
            glob.glob(os.path.join(TOP, "tools/testing/selftests/vfio/**/*.mk"), recursive=True):
        text = open(mk).read().replace("\\\n", " ")
        for m in re.finditer(r"^([A-Z_]+)\s*([+:]?=)(.*)$", text, re.M):
            name, op, val = m.groups()
            words = []
            for w in val.split():
                v = re.fullmatch(r"\$\(([A-Z_]+)\)", w)
                words += vars_.get(v.group(1), []) if v else [w]
            vars_[name] = (vars_.get(name, []) if op == "+=" else []) + words
    for name in ("TEST_GEN_PROGS", "TEST_GEN_PROGS_EXTENDED"):
        progs.update(vars_.get(name, []))
    return progs


def kunit_suites():
    names = set()
    for c in glob.glob(os.path.join(TOP, "drivers/vfio/*.c")):
        text = open(c).read()
        if "kunit_test_suite" in text:
            names.update(re.findall(r'\.name\s*=\s*"([a-z0-9_]+)"', text))
    return names


def tooling_text():
    parts = []
    for root, _, files in os.walk(os.path.join(TOP, "tooling")):
        for f in files:
            p = os.path.join(root, f)
            if p.endswith(("check-docs.py", ".md")) or "__pycache__" in p:
                continue
            try:
                parts.append(open(p, errors="replace").read())
            except OSError:
                pass
    parts.append(read("Makefile"))
    for c in glob.glob(os.path.join(TOP, "tools/testing/selftests/vfio/**/*.[ch]"), recursive=True):
        parts.append(open(c, errors="replace").read())
    return "\n".join(parts)


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else None
    targets = make_targets()
    progs = selftests()
    suites = kunit_suites()
    tooling = tooling_text()
    patches = "".join(read(os.path.join("patches", p))
                      for p in os.listdir(os.path.join(TOP, "patches")) if p.endswith(".patch"))
    patched = set(re.findall(r"^diff --git a/(\S+)", patches, re.M))
    # names of the UAPI (ioctls, flags) are not knobs
    uapi = patches
    if base and os.path.exists(os.path.join(base, "include/uapi/linux/vfio.h")):
        uapi += open(os.path.join(base, "include/uapi/linux/vfio.h")).read()
    n, bad = 0, 0

    def tap(ok, name, why=()):
        nonlocal n, bad
        n += 1
        print(f"{'ok' if ok else 'not ok'} {n} {name}")
        for w in why:
            print(f"#   {w}")
        bad += not ok

    for doc in DOCS:
        if not os.path.exists(os.path.join(TOP, doc)):
            tap(False, f"{doc} exists")
            continue
        text = read(doc)
        ticks = re.findall(r"`([^`\n]+)`", text)
        code = "\n".join(re.findall(r"^    .*$", text, re.M))

        verbs = set(re.findall(r"\bmake ([a-z][a-z0-9-]*)", " ".join(ticks) + "\n" + code))
        missing = sorted(v for v in verbs if v not in targets)
        tap(not missing, f"{doc}: every 'make VERB' is a Makefile target",
            [f"no target '{v}'" for v in missing])

        missing = []
        for t in ticks:
            for word in t.split():
                p = word.rstrip(".,:;)")
                if not p.startswith(ROOTS) or re.search(r"[<>*{}$]|NNNN", p):
                    continue
                if os.path.exists(os.path.join(TOP, p)) or p in patched:
                    continue
                if base and os.path.exists(os.path.join(base, p)):
                    continue
                missing.append(p)
        tap(not missing, f"{doc}: every path it names exists",
            [f"{p}: neither here nor patched in 6.12" for p in sorted(set(missing))])

        named = set(re.findall(r"\b(vfio_[a-z0-9_]+_(?:test|perf))\b", text))
        named |= set(re.findall(r"\bT=([a-z0-9_]+)", text))
        missing = sorted(t for t in named if t not in progs)
        tap(not missing, f"{doc}: every kselftest it names is in the selftests' Makefile",
            [f"{t}: not in TEST_GEN_PROGS" for t in missing])

        named = set(re.findall(r"SUITE=([a-z0-9_]+)", text))
        named |= {t for t in ticks if re.fullmatch(r"vfio_(?:dirty|type1)_[a-z0-9_]+", t)
                  and not t.endswith(("_test", "_perf")) and not t.startswith("vfio_dirty_ops")}
        missing = sorted(s for s in named if s not in suites)
        tap(not missing, f"{doc}: every KUnit suite it names exists",
            [f"{s}: no such suite in drivers/vfio" for s in missing])

        knobs = set(re.findall(r"\b((?:VFIO|E2E|VIOMMU)_[A-Z0-9_]+)\b", text))
        knobs -= {"VFIO_MIG_CACHE"} if "VFIO_MIG_CACHE" in tooling else set()
        missing = sorted(k for k in knobs if not re.search(rf"\b{k}\b", tooling)
                         and not re.search(rf"\b{k}\b", uapi))
        tap(not missing, f"{doc}: every environment knob it names is read by the tooling",
            [f"{k}: the tooling never reads it" for k in missing])

            # mktemp's XXXXXX: six letters and digits, some not lower case
        ids = [i for i in re.findall(r"\b(?:bench|viommu|test|run)\.([A-Za-z0-9]{6})\b", text)
               if re.search(r"[0-9A-Z]", i) and i != "XXXXXX"]
        tap(not ids, f"{doc}: names no run directory of one machine's cache",
            [f"{i}" for i in sorted(set(ids))])
    print(f"1..{n}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
