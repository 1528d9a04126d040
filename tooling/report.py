#!/usr/bin/env python3
"""Summarise a test run: KUnit (kunit.py parse --json) and TAP files.

usage: report.py [--kunit JSON] [--tap SUITE=FILE[:EXIT]]...

Prints one line per suite, the skipped tests with their reasons, the
failures, and ends with 'N passed, N failed'.  Exit status 1 when anything
failed or nothing ran.
"""
import argparse
import json
import re
import sys


def kunit_leaves(group, path):
    for case in group.get("test_cases", []):
        yield path + [case["name"]], case["status"]
    for sub in group.get("sub_groups", []):
        yield from kunit_leaves(sub, path + [sub["name"]])


def parse_tap(path, exitcode):
    """[(name, 'PASS'|'FAIL'|'SKIP', reason)] from a TAP stream."""
    results, planned = [], None
    try:
        lines = open(path, errors="replace").read().splitlines()
    except FileNotFoundError:
        return [("(no output)", "FAIL", f"{path} missing")]
    for line in lines:
        m = re.match(r"^1\.\.(\d+)", line)
        if m and planned is None:
            planned = int(m.group(1))
            continue
        m = re.match(r"^(not ok|ok) \d+ (.*?)(?:\s+#\s*(SKIP|TODO)\b\s*(.*))?$", line)
        if not m:
            continue
        ok, name, directive, reason = m.groups()
        if directive == "SKIP":
            results.append((name, "SKIP", reason or ""))
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kunit")
    ap.add_argument("--tap", action="append", default=[])
    args = ap.parse_args()

    suites = []
    if args.kunit:
        try:
            data = json.load(open(args.kunit))
            bysuite = {}
            for path, status in kunit_leaves(data, []):
                st = {"PASS": "PASS", "SKIP": "SKIP"}.get(status, "FAIL")
                bysuite.setdefault(path[0], []).append((".".join(path[1:]), st, ""))
            if not bysuite:
                bysuite["kunit"] = [("(no KUnit results)", "FAIL", "no suite ran")]
            suites += [(f"kunit {s}", r) for s, r in bysuite.items()]
        except (OSError, ValueError) as e:
            suites.append(("kunit", [("(parse)", "FAIL", str(e))]))
    for spec in args.tap:
        name, _, rest = spec.partition("=")
        path, _, code = rest.partition(":")
        suites.append((name, parse_tap(path, int(code) if code else None)))

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
    print(f"{total['PASS']} passed, {total['FAIL']} failed")
    sys.exit(1 if total["FAIL"] or not total["PASS"] else 0)


if __name__ == "__main__":
    main()
