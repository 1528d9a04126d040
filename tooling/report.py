#!/usr/bin/env python3
"""Summarise a test run: KUnit (kunit.py parse --json) and TAP files.

usage: report.py [--kunit JSON] [--tap SUITE=FILE[:EXIT]]...   (FILE without "=")
                 [--require TAGS] [--times FILE]

Prints one line per suite, the skipped tests with their reasons, the
failures, the stage times (--times: lines "STAGE SECONDS"), and ends with
'N passed, N failed'.  Exit status 1 when anything failed or nothing ran.

Each TAP file is its own suite, numbered from 1.  Suites named
"kselftest ..." follow the skip policy of --require (a space-separated set
of feature tags, e.g. "edu mtty migdev"): a SKIP whose reason starts with a
required tag and a colon ("edu: no edu device") fails, as required by this
configuration, and so does a SKIP without a tag while any tag is required.
"""
import argparse
import json
import re
import sys
import time

START = time.monotonic()
TAG = re.compile(r"^\s*([A-Za-z0-9_-]+):")


def kunit_leaves(group, path):
    for case in group.get("test_cases", []):
        yield path + [case["name"]], case["status"]
    for sub in group.get("sub_groups", []):
        yield from kunit_leaves(sub, path + [sub["name"]])


def parse_kunit(path):
    """[(suite, [(name, status, reason)])] from kunit.py parse --json."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        return [("kunit", [("(parse)", "FAIL", str(e))])]
    bysuite = {}
    for leaf, status in kunit_leaves(data, []):
        st = {"PASS": "PASS", "SKIP": "SKIP"}.get(status, "FAIL")
        bysuite.setdefault(leaf[0], []).append((".".join(leaf[1:]), st, ""))
    if not bysuite:
        bysuite["kunit"] = [("(no KUnit results)", "FAIL", "no suite ran")]
    return [(f"kunit {s}", r) for s, r in bysuite.items()]


def parse_tap(path, exitcode):
    """[(name, 'PASS'|'FAIL'|'SKIP', reason)] from a TAP stream."""
    results, planned = [], None
    try:
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return [("(no output)", "FAIL", f"{path} missing")]
    for line in lines:
        m = re.match(r"^1\.\.(\d+)(?:\s+#\s*SKIP\b\s*(.*))?", line)
        if m and planned is None:
            planned = int(m.group(1))
            if planned == 0 and m.group(2) is not None:
                # the whole program skipped (ksft_exit_skip)
                results.append(("(all)", "SKIP", m.group(2).strip()))
            continue
        m = re.match(r"^(not ok|ok) \d+ (.*?)(?:\s+#\s*(SKIP|TODO)\b\s*(.*))?$", line)
        if not m:
            continue
        ok, name, directive, reason = m.groups()
        if directive == "SKIP":
            results.append((name, "SKIP", (reason or "").strip()))
        elif ok == "ok":
            results.append((name, "PASS", ""))
        else:
            # kselftest puts a failure's reason after "#  "
            name, _, reason = name.partition(" # ")
            results.append((name.strip(), "FAIL", reason.strip()))
    if planned is not None and len(results) < planned:
        results.append(("(missing results)", "FAIL",
                        f"{planned - len(results)} of {planned} planned tests did not report"))
    if exitcode not in (None, 0, 4) and not any(r[1] == "FAIL" for r in results):
        results.append(("(exit status)", "FAIL", f"exited with {exitcode}"))
    return results


def skip_tag(reason):
    """The feature tag a SKIP reason starts with ("edu: ..."), or None."""
    m = TAG.match(reason or "")
    return m.group(1) if m else None


def apply_policy(results, required):
    """Turn the SKIPs the configuration does not allow into failures."""
    if not required:
        return results
    out = []
    for name, st, reason in results:
        if st == "SKIP":
            tag = skip_tag(reason)
            if tag is None:
                st, reason = "FAIL", f"untagged SKIP while {' '.join(sorted(required))} are required: {reason}"
            elif tag in required:
                st, reason = "FAIL", f"SKIP of '{tag}', required by this configuration: {reason}"
        out.append((name, st, reason))
    return out


def read_times(path):
    times = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.rsplit(None, 1)
                if len(parts) == 2:
                    times.append((parts[0], float(parts[1])))
    except (OSError, ValueError):
        pass
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kunit")
    ap.add_argument("--tap", action="append", default=[])
    ap.add_argument("--require", default="",
                    help="feature tags a kselftest may not skip (space-separated)")
    ap.add_argument("--times", help="file of 'STAGE SECONDS' lines to print")
    args = ap.parse_args()
    required = set(args.require.split())

    suites = []
    if args.kunit:
        suites += parse_kunit(args.kunit)
    for spec in args.tap:
        name, _, rest = spec.rpartition("=")   # a name may hold "=" (W=1)
        path, _, code = rest.rpartition(":") if re.search(r":-?\d+$", rest) else (rest, "", "")
        results = parse_tap(path, int(code) if code else None)
        if name.startswith("kselftest"):
            results = apply_policy(results, required)
        suites.append((name, results))

    total = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    skipped, failed = [], []
    for name, results in suites:
        n = {"PASS": 0, "FAIL": 0, "SKIP": 0}
        for test, st, reason in results:
            n[st] += 1
            if st == "SKIP":
                skipped.append(f"  {name}: {test}: {reason}")
            elif st == "FAIL":
                failed.append(f"  {name}: {test}" + (f": {reason}" if reason else ""))
        for k in total:
            total[k] += n[k]
        verdict = "FAIL" if n["FAIL"] else ("ok" if n["PASS"] else "SKIP")
        print(f"{verdict:4}  {name}: {n['PASS']} passed, {n['FAIL']} failed, {n['SKIP']} skipped")
    if skipped:
        print(f"skipped ({len(skipped)}):")
        print("\n".join(skipped))
    if failed:
        print(f"FAILED ({len(failed)}):")
        print("\n".join(failed))
    if args.times:
        times = read_times(args.times)
        own = time.monotonic() - START   # the report's own part of its stage
        if any(s == "report" for s, _ in times):
            times = [(s, t + own if s == "report" else t) for s, t in times]
        else:
            times.append(("report", own))
        print("stage times: " + ", ".join(f"{s} {t:.0f}s" for s, t in times)
              + f" (total {sum(t for _, t in times):.0f}s)")
    print(f"{total['PASS']} passed, {total['FAIL']} failed")
    sys.exit(1 if total["FAIL"] or not total["PASS"] else 0)


if __name__ == "__main__":
    main()
