#!/usr/bin/env python3
"""Unit tests of tooling/table.py and its two users: tooling/bench.py and
tooling/guest/viommu-migration.py --table print what they printed before
the shared printer (the expected outputs below are those of the scripts
before it, on the same logs)."""
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
    ),
}

BENCH_EXPECTED = (
    'case (medians over 2 boots, ±half the spread)                            6.12             series  6.12/series\n'
    'get, 1 TiB mapping, nothing dirty                              1.6e+04 us ±6%          13 us ±4%    1.23e+03x\n'
    'get, no mappings / CHECK_EXTENSION                                2.292 x ±5%          2.2 x ±5%        1.04x\n'
    'ref: memset of the same bitmap (user space)                      2.145 us ±0%         2.1 us ±5%        1.02x\n'
    'get, 256 MiB all dirty                                                      -      22.74 us ±10%            -\n'
    '\n'
    'goal                                                                     measured       goal  result\n'
    'GET, no mappings (/ CHECK_EXTENSION), series vs 6.12                        0.96x    <= 1.1x  PASS\n'
    'UNMAP with bitmap 4 KiB (/ plain unmap), series vs 6.12                         -        1.1  n/a\n'
    'UNMAP with bitmap 4 KiB, series vs 6.12 (raw, across boots)                     -        1.1  n/a\n'
    'UNMAP with bitmap 4 KiB / plain unmap, series                                   -        1.3  n/a\n'
    'GET 256 MiB all dirty / memset of its bitmap, series                        10.9x    <= 1.2x  FAIL\n'
    '  of which the bitmap: (GET at 4 KiB - GET at 2 MiB) / memset                   -        1.2  n/a\n'
    'speed-up: get, 1 TiB mapping, nothing dirty                             1.23e+03x   >= 1000x  PASS\n'
    'speed-up: start+stop, one 1 TiB mapping                                         -       1000  n/a\n'
    'speed-up: get per mapping, all mappings, total                                  -        100  n/a\n'
    'speed-up: get, one call over all mappings                                       -         10  n/a\n'
    'speed-up: get, 256 MiB all dirty                                                -        1.3  n/a\n'
    'pin+unpin with tracking on / off, series                                        -       1.05  n/a\n'
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
        r = self.run_py(os.path.join(TOOLING, "bench.py"), self.tmp.name, "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, BENCH_EXPECTED)

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
