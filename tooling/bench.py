#!/usr/bin/env python3
"""Table of tooling/bench: medians over boots of each kernel, the spread of
the boot medians, the ratio 6.12/series and the goals of the series.

usage: bench.py RUNDIR BOOTS   (reads RUNDIR/{upstream,series}.N/output.log)
"""
import re
import sys

from table import columns, half_spread, median, show

LINE = re.compile(r"(.+): median ([0-9.-]+) (\S+) \(min ([0-9.-]+), max ([0-9.-]+), (\d+) runs\)")

# ratios the programs take per pair of interleaved runs, in one boot
GET0_Q = "get, no mappings / CHECK_EXTENSION"
UNMAPB = "unmap with bitmap, 4 KiB mapping"
UNMAPB_Q = "unmap with bitmap / unmap, 4 KiB mapping"
DENSE = "get, 256 MiB all dirty"
DENSE_2M = "get, 256 MiB all dirty, 2 MiB pages"
MEMSET = "ref: memset of the same bitmap (user space)"
PIN_Q = "pin+unpin 4 KiB, tracking on / off"

# case -> minimum speed-up of the series over 6.12
SPEEDUP = {
    "get, 1 TiB mapping, nothing dirty": 1000,
    "start+stop, one 1 TiB mapping": 1000,
    "get per mapping, all mappings, total": 100,
    "get, one call over all mappings": 10,
    DENSE: 1.3,
}


def load(path):
    d = {}
    for line in open(path, errors="replace"):
        m = LINE.match(line.strip())
        if m:
            d[m.group(1)] = (float(m.group(2)), m.group(3))
    return d


def main():
    run, boots = sys.argv[1], int(sys.argv[2])
    per = {k: [load(f"{run}/{k}.{b}/output.log") for b in range(1, boots + 1)]
           for k in ("upstream", "series")}

    def vals(k, case):
        return [b[case][0] for b in per[k] if case in b]

    med = median

    def fmt(v, unit=""):
        if not v:
            return "-"
        return f"{med(v):.4g} {unit} ±{half_spread(v):.0f}%"

    units = {}      # case -> unit, in the order the cases first appear
    for b in per["upstream"] + per["series"]:
        for c, (_, u) in b.items():
            units.setdefault(c, u)
    results = []
    rows = [[f"case (medians over {boots} boots, ±half the spread)", "6.12", "series",
             "6.12/series"]]
    for c in units:
        up, ours = vals("upstream", c), vals("series", c)
        ratio = f"{med(up) / med(ours):.3g}x" if up and ours and med(ours) else "-"
        rows.append([c, fmt(up, units[c]), fmt(ours, units[c]), ratio])
    show(columns((("", "58"), (" ", ">18"), (" ", ">18"), (" ", ">12")), rows))

    def goal(name, value, limit, better_low, unit="x", info=False):
        if value is None:
            results.append((name, "-", f"{limit}", "n/a"))
            return
        ok = value <= limit if better_low else value >= limit
        results.append((name, f"{value:.3g}{unit}",
                        f"{'<=' if better_low else '>='} {limit}{unit}",
                        "info" if info else "PASS" if ok else "FAIL"))

    def ratio_of(a, b):
        return a / b if a is not None and b else None

    goal("GET, no mappings (/ CHECK_EXTENSION), series vs 6.12",
         ratio_of(med(vals("series", GET0_Q)), med(vals("upstream", GET0_Q))), 1.1, True)
    goal("UNMAP with bitmap 4 KiB (/ plain unmap), series vs 6.12",
         ratio_of(med(vals("series", UNMAPB_Q)), med(vals("upstream", UNMAPB_Q))),
         1.1, True)
    # raw times of different boots: for information, the pair above judges
    goal("UNMAP with bitmap 4 KiB, series vs 6.12 (raw, across boots)",
         ratio_of(med(vals("series", UNMAPB)), med(vals("upstream", UNMAPB))), 1.1, True,
         info=True)
    goal("UNMAP with bitmap 4 KiB / plain unmap, series",
         med(vals("series", UNMAPB_Q)), 1.3, True)
    goal("GET 256 MiB all dirty / memset of its bitmap, series",
         med([b[DENSE][0] / b[MEMSET][0] for b in per["series"]
              if DENSE in b and MEMSET in b]), 1.2, True)
    # what the bitmap itself costs: the same GET at 2 MiB pages writes 16
    # bytes instead of 8 KiB, so the difference is the writing of the words
    goal("  of which the bitmap: (GET at 4 KiB - GET at 2 MiB) / memset",
         ratio_of(None if not vals("series", DENSE_2M) else
                  med(vals("series", DENSE)) - med(vals("series", DENSE_2M)),
                  med(vals("series", MEMSET))), 1.2, True)
    for c, want in SPEEDUP.items():
        goal(f"speed-up: {c}", ratio_of(med(vals("upstream", c)), med(vals("series", c))),
             want, False)
    goal("pin+unpin with tracking on / off, series",
         med(vals("series", PIN_Q)), 1.05, True)
    print()
    show(columns((("", "70"), (" ", ">10"), (" ", ">10"), ("  ", "")),
                 [["goal", "measured", "goal", "result"], *results]))


main()
