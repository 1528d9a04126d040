#!/usr/bin/env python3
"""Unit tests of tooling/table.py and its two users: tooling/bench.py and
tooling/guest/viommu-migration.py --table print what they printed before
the shared printer (the expected outputs below are those of the scripts
before it, on the same logs; bench.py's with the icount table, the goals
of issue 21 and --placement added since)."""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLING = os.path.dirname(HERE)
sys.path.insert(0, TOOLING)
sys.dont_write_bytecode = True
import table  # noqa: E402

BENCH_LOGS = {
    'upstream.1': (
        'get, 1 TiB mapping, nothing dirty: median 17000.5 us (min 7.464, max 104.130, 3 runs)\n'
        'get, no mappings / CHECK_EXTENSION: median 2.183 x (min 2.069, max 2.321, 3 runs)\n'
        'ref: memset of the same bitmap (user space): median 2.145 us (min 1.904, max 779.592, 3 runs)\n'
    ),
    'upstream.2': (
        'get, 1 TiB mapping, nothing dirty: median 15000.25 us (min 7.464, max 104.130, 3 runs)\n'
        'get, no mappings / CHECK_EXTENSION: median 2.4 x (min 2.069, max 2.321, 3 runs)\n'
    ),
    'series.1': (
        'get, 1 TiB mapping, nothing dirty: median 12.5 us (min 7.464, max 104.130, 3 runs)\n'
        'get, no mappings / CHECK_EXTENSION: median 2.1 x (min 2.069, max 2.321, 3 runs)\n'
        'get, 256 MiB all dirty: median 24.978 us (min 12.625, max 157.381, 3 runs)\n'
        'ref: memset of the same bitmap (user space): median 2.0 us (min 1.904, max 779.592, 3 runs)\n'
    ),
    'series.2': (
        'get, 1 TiB mapping, nothing dirty: median 13.5 us (min 7.464, max 104.130, 3 runs)\n'
        'get, no mappings / CHECK_EXTENSION: median 2.3 x (min 2.069, max 2.321, 3 runs)\n'
        'get, 256 MiB all dirty: median 20.5 us (min 12.625, max 157.381, 3 runs)\n'
        'ref: memset of the same bitmap (user space): median 2.2 us (min 1.904, max 779.592, 3 runs)\n'
        'get, 1 TiB all dirty: median 12000 us (min 1, max 2, 3 runs)\n'
        'ref: memset of the same bitmap (user space), 1 TiB: median 11000 us (min 1, max 2, 3 runs)\n'
        'get, 10000 scattered pages dirty in 1 TiB: median 500 us (min 1, max 2, 3 runs)\n'
        'tracking memory, 10000 scattered pages dirty in 1 TiB: median 900 KiB (min 900, max 900, 1 runs)\n'
    ),
    'icount-upstream.1': (
        'get, no mappings, 1 GiB range, per call: median 4.000 us (min 4, max 4, 3 runs)\n'
        'unmap with bitmap / unmap, 4 KiB mapping: median 1.100 x (min 1, max 2, 101 runs)\n'
    ),
    'icount-series.1': (
        'get, no mappings, 1 GiB range, per call: median 4.100 us (min 4, max 4, 3 runs)\n'
        'unmap with bitmap / unmap, 4 KiB mapping: median 1.200 x (min 1, max 2, 101 runs)\n'
        'pin+unpin 4 KiB, tracking on / off: median 1.010 x (min 1, max 2, 11 runs)\n'
    ),
}

PLACEMENT_LOGS = {
    'icount-series.1': 'get, no mappings, 1 GiB range, per call: median 4.151 us (min 4, max 4, 11 runs)\n',
    'icount-moved.1': 'get, no mappings, 1 GiB range, per call: median 4.135 us (min 4, max 4, 11 runs)\n',
    'wall-series.1': 'get, no mappings, 1 GiB range, per call: median 6.118 us (min 4, max 4, 11 runs)\n',
    'wall-moved.1': 'get, no mappings, 1 GiB range, per call: median 5.958 us (min 4, max 4, 11 runs)\n',
}

BENCH_EXPECTED = (
    'wall clock: TCG guest, 2 vCPUs\n'
    'case (medians over 2 boots, ±half the spread)                            6.12             series  6.12/series\n'
    'get, 1 TiB mapping, nothing dirty                              1.6e+04 us ±6%          13 us ±4%    1.23e+03x\n'
    'get, no mappings / CHECK_EXTENSION                                2.292 x ±5%          2.2 x ±5%        1.04x\n'
    'ref: memset of the same bitmap (user space)                      2.145 us ±0%         2.1 us ±5%        1.02x\n'
    'get, 256 MiB all dirty                                                      -      22.74 us ±10%            -\n'
    'get, 1 TiB all dirty                                                        -     1.2e+04 us ±0%            -\n'
    'ref: memset of the same bitmap (user space), 1 TiB                          -     1.1e+04 us ±0%            -\n'
    'get, 10000 scattered pages dirty in 1 TiB                                   -         500 us ±0%            -\n'
    'tracking memory, 10000 scattered pages dirty in 1 TiB                       -        900 KiB ±0%            -\n'
    '\n'
    'goal                                                                                 measured       goal  result\n'
    'GET, no mappings (/ CHECK_EXTENSION), series vs 6.12                                    0.96x    <= 1.1x  info (icount)\n'
    'UNMAP with bitmap 4 KiB (/ plain unmap), series vs 6.12                                     -        1.1  n/a\n'
    'UNMAP with bitmap 4 KiB, series vs 6.12 (raw, across boots)                                 -        1.1  n/a\n'
    'UNMAP with bitmap 4 KiB / plain unmap, series                                               -        1.3  n/a\n'
    'GET 256 MiB all dirty / memset of its bitmap, series                                    10.9x    <= 1.2x  FAIL\n'
    '  of which the bitmap: (GET at 4 KiB - GET at 2 MiB) / memset                               -        1.2  n/a\n'
    'GET 16 GiB all dirty / memset of its bitmap, series                                         -        1.2  n/a\n'
    '  the same / u64 stores of its bitmap, series                                               -        1.2  n/a\n'
    'GET 1 TiB all dirty / memset of its bitmap, series                                      1.09x    <= 1.2x  PASS\n'
    '  the same / u64 stores of its bitmap, series                                               -        1.2  n/a\n'
    'speed-up: get, 1 TiB mapping, nothing dirty                                         1.23e+03x   >= 1000x  PASS\n'
    'speed-up: start+stop, one 1 TiB mapping                                                     -       1000  n/a\n'
    'speed-up: get per mapping, all mappings, total                                              -        100  n/a\n'
    'speed-up: get, one call over all mappings                                                   -         10  n/a\n'
    'speed-up: get, 256 MiB all dirty                                                            -        1.3  n/a\n'
    'speed-up: get, 16 GiB all dirty                                                             -          5  n/a\n'
    "speed-up: get, 1 TiB all dirty (vs 6.12's whole-bitmap GET*)                            1.33x      >= 5x  FAIL\n"
    "speed-up: get, 10000 scattered pages dirty in 1 TiB (vs 6.12's whole-bitmap GET*)         32x     >= 20x  PASS\n"
    "speed-up: get, 100000 scattered pages dirty in 1 TiB (vs 6.12's whole-bitmap GET*)          -         20  n/a\n"
    'tracking memory, 10000 scattered pages dirty in 1 TiB, series                         900 KiB <= 1024 KiB  PASS\n'
    'pin+unpin with tracking on / off, series                                                    -       1.05  n/a\n'
    '* against 6.12\'s "get, 1 TiB mapping, nothing dirty": 6.12 cannot make these pages dirty here (no\n'
    '  device reports writes without touching memory, and a 3 GiB guest cannot pin\n'
    "  1 TiB), and its GET copies the mapping's whole 32 MiB bitmap whatever is dirty\n"
    'info (icount): shown here, judged on the icount figures below\n'
    '\n'
    "icount: the same programs under QEMU -icount shift=0,sleep=off, one vCPU: the\n"
    "guest's clock advances 1 ns per instruction it executes (idle time jumps to\n"
    'the next timer), so a time is a count of guest instructions\n'
    'case (guest us under -icount (1 us = 1000 guest instructions), 1 boots)               6.12             series  6.12/series\n'
    'get, no mappings, 1 GiB range, per call                              4 us ±0%         4.1 us ±0%       0.976x\n'
    'unmap with bitmap / unmap, 4 KiB mapping                            1.1 x ±0%          1.2 x ±0%       0.917x\n'
    'pin+unpin 4 KiB, tracking on / off                                          -         1.01 x ±0%            -\n'
    '\n'
    'goal                                                                     measured       goal  result\n'
    'GET, no mappings (per call), series vs 6.12                                 1.02x   <= 1.05x  PASS\n'
    '  the same / CHECK_EXTENSION, series vs 6.12                                    -       1.05  n/a\n'
    'UNMAP with bitmap 4 KiB (/ plain unmap), series vs 6.12                     1.09x   <= 1.05x  FAIL\n'
    'pin+unpin with tracking on / off, series                                    1.01x   <= 1.05x  PASS\n'
)

PLACEMENT_EXPECTED = (
    "placement: the series' bench kernel and the same kernel with unrelated code moved: x\n"
    'case (medians over 1 boots)                                        series          moved  moved/series  within 1%\n'
    'icount (1 us = 1000 guest instructions):                                                                \n'
    '  get, no mappings, 1 GiB range, per call                    4.151 us ±0%   4.135 us ±0%       0.9961x  PASS\n'
    '  get, no mappings / CHECK_EXTENSION                                    -              -             -  n/a\n'
    '  unmap with bitmap, 4 KiB mapping                                      -              -             -  n/a\n'
    '  unmap with bitmap / unmap, 4 KiB mapping                              -              -             -  n/a\n'
    'wall clock:                                                                                             \n'
    '  get, no mappings, 1 GiB range, per call                    6.118 us ±0%   5.958 us ±0%       0.9738x  no (info)\n'
    '  get, no mappings / CHECK_EXTENSION                                    -              -             -  n/a\n'
    '  unmap with bitmap, 4 KiB mapping                                      -              -             -  n/a\n'
    '  unmap with bitmap / unmap, 4 KiB mapping                              -              -             -  n/a\n'
)

VIOMMU_LOGS = {
    'v1.log': (
        'viommu-result mappings=1000 boot_s=3.5 written=32 unmapped=16 total_ms=1489 downtime_ms=40 syncs=44 map=1034 unmap=37 unmap_bitmap=16 get_bitmap=43999 dirty_other=1 map_ms=26.8 unmap_ms=1.7 unmap_bitmap_ms=2.1 get_bitmap_ms=370.5 dirty_other_ms=0.1 get_ms_per_sync=8.42 get_us_per_call=8.42\n'
    ),
    'v2.log': (
        'viommu-result mappings=1000 boot_s=3.7 written=32 unmapped=16 total_ms=1374 downtime_ms=39 syncs=34 map=1034 unmap=37 unmap_bitmap=16 get_bitmap=34000 dirty_other=1 map_ms=31.9 unmap_ms=1.8 unmap_bitmap_ms=2.5 get_bitmap_ms=309.0 dirty_other_ms=0.0 get_ms_per_sync=9.09 get_us_per_call=9.09\n'
    ),
    'v3.log': (
        'noise\n'
        'viommu-result mappings=1000 boot_s=3.8 written=32 unmapped=16 total_ms=1479 downtime_ms=38 syncs=43 map=1034 unmap=37 unmap_bitmap=16 get_bitmap=43000 dirty_other=1 map_ms=29.9 unmap_ms=1.7 unmap_bitmap_ms=2.2 get_bitmap_ms=369.9 dirty_other_ms=0.1 get_ms_per_sync=8.6 get_us_per_call=8.6\n'
    ),
    'v4.log': (
        'viommu-result mappings=1000 boot_s=4.4 written=32 unmapped=16 total_ms=1368 downtime_ms=41 syncs=25 map=1034 unmap=37 unmap_bitmap=16 get_bitmap=25000 dirty_other=1 map_ms=34.8 unmap_ms=1.6 unmap_bitmap_ms=1.9 get_bitmap_ms=258.8 dirty_other_ms=0.1 get_ms_per_sync=10.35 get_us_per_call=10.35\n'
    ),
    'v5.log': (
        'nothing\n'
    ),
}

VIOMMU_EXPECTED = (
    '| | 6.12 | series | ratio |\n'
    '|---|---|---|---|\n'
    '| IOVA mappings of 4 KiB | 1000 | 1000 |  |\n'
    '| migration total time | 1479 ms (1374-1489) | 1368 ms | 1.1x |\n'
    '| downtime | 39 ms (38-40) | 41 ms | 1.0x |\n'
    '| dirty-sync rounds | 43 (34-44) | 25 |  |\n'
    '| GET_BITMAP calls | 43000 (34000-43999) | 25000 |  |\n'
    '| time in GET_BITMAP | 369.9 ms (309-370.5) | 258.8 ms | 1.4x |\n'
    '| time in GET_BITMAP per sync round | 8.6 ms (8.42-9.09) | 10.35 ms | 0.8x |\n'
    '| time per GET_BITMAP | 8.6 us (8.42-9.09) | 10.35 us | 0.8x |\n'
    '| UNMAP_DMA with a bitmap | 16 | 16 |  |\n'
    '| time in them | 2.2 ms (2.1-2.5) | 1.9 ms |  |\n'
    '| pages the device wrote in pre-copy | 32 | 32 |  |\n'
    '| of them unmapped and mapped again | 16 | 16 |  |\n'
)

VIOMMU_EXPECTED_3 = (
    '| | 6.12 | series | x |\n'
    '|---|---|---|---|\n'
    '| IOVA mappings of 4 KiB | 1000 | 1000 | (no result) |\n'
    '| migration total time | 1431.5 ms (1374-1489) | 1368 ms | (no result) |\n'
    '| downtime | 39.5 ms (39-40) | 41 ms | (no result) |\n'
    '| dirty-sync rounds | 39 (34-44) | 25 | (no result) |\n'
    '| GET_BITMAP calls | 38999.5 (34000-43999) | 25000 | (no result) |\n'
    '| time in GET_BITMAP | 339.75 ms (309-370.5) | 258.8 ms | (no result) |\n'
    '| time in GET_BITMAP per sync round | 8.755 ms (8.42-9.09) | 10.35 ms | (no result) |\n'
    '| time per GET_BITMAP | 8.755 us (8.42-9.09) | 10.35 us | (no result) |\n'
    '| UNMAP_DMA with a bitmap | 16 | 16 | (no result) |\n'
    '| time in them | 2.3 ms (2.1-2.5) | 1.9 ms | (no result) |\n'
    '| pages the device wrote in pre-copy | 32 | 32 | (no result) |\n'
    '| of them unmapped and mapped again | 16 | 16 | (no result) |\n'
)


class Table(unittest.TestCase):
    def test_median(self):
        self.assertIsNone(table.median([]))
        self.assertEqual(table.median([3, 1, 2]), 2)
        self.assertEqual(table.median([4, 1, 2, 3]), 2.5)

    def test_half_spread(self):
        self.assertEqual(table.half_spread([9, 10, 11]), 10)
        self.assertEqual(table.half_spread([0, 0]), 0)

    def test_columns(self):
        self.assertEqual(table.columns((("", "4"), (" ", ">3"), ("  ", "")),
                                       [["a", "b", "c"], ["long", "1", "x"]]),
                         ["a      b  c", "long   1  x"])

    def test_markdown(self):
        self.assertEqual(table.markdown(["", "x", "y"], [["r", "1", ""]]),
                         ["| | x | y |", "|---|---|---|", "| r | 1 |  |"])


class Printers(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="test_table.")
        self.addCleanup(self.tmp.cleanup)

    def put(self, files):
        for name, text in files.items():
            path = os.path.join(self.tmp.name, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)

    def run_py(self, *args):
        return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                              cwd=self.tmp.name)

    def test_bench(self):
        self.put({f"{k}/output.log": t for k, t in BENCH_LOGS.items()})
        r = self.run_py(os.path.join(TOOLING, "bench.py"), self.tmp.name, "2", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, BENCH_EXPECTED)

    def test_bench_placement(self):
        self.put({f"{k}/output.log": t for k, t in PLACEMENT_LOGS.items()})
        r = self.run_py(os.path.join(TOOLING, "bench.py"), "--placement", self.tmp.name, "1",
                        "with unrelated code moved: x")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, PLACEMENT_EXPECTED)

    def test_viommu(self):
        self.put(VIOMMU_LOGS)
        script = os.path.join(TOOLING, "guest", "viommu-migration.py")
        r = self.run_py(script, "--table", "6.12=v1.log,v2.log,v3.log", "series=v4.log")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, VIOMMU_EXPECTED)
        r = self.run_py(script, "--table", "6.12=v1.log,v2.log", "series=v4.log",
                        "x=v5.log")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stdout, VIOMMU_EXPECTED_3)


if __name__ == "__main__":
    unittest.main()
