#!/usr/bin/env python3
"""Unit tests of tooling/coverage.py: changed lines, lcov parsing, figures."""
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.dont_write_bytecode = True
import coverage  # noqa: E402


class Coverage(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.base = os.path.join(self.dir.name, "base")
        self.tree = os.path.join(self.dir.name, "tree")

    def write(self, root, rel, text):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_changed_lines(self):
        self.write(self.base, "d/f.c", "a\nb\nc\nd\n")
        self.write(self.tree, "d/f.c", "a\nB\nc\nnew1\nnew2\nd\n")
        self.assertEqual(coverage.changed_lines(self.base, self.tree, "d/f.c"), {2, 4, 5})
        # a file only the series has: all of it (None)
        self.write(self.tree, "d/g.c", "x\n")
        self.assertIsNone(coverage.changed_lines(self.base, self.tree, "d/g.c"))
        # unchanged: nothing
        self.write(self.base, "d/h.c", "x\n")
        self.write(self.tree, "d/h.c", "x\n")
        self.assertEqual(coverage.changed_lines(self.base, self.tree, "d/h.c"), set())

    def test_parse_and_figures(self):
        info = self.write(self.dir.name, "c.info", "\n".join([
            "TN:", f"SF:{self.tree}/d/f.c",
            "FN:1,f", "FN:5,g", "FNDA:3,f", "FNDA:0,g",
            "DA:1,3", "DA:2,0", "DA:4,1", "DA:5,0",
            "BRDA:2,0,0,1", "BRDA:2,0,1,-", "BRDA:4,0,0,0", "BRDA:4,0,1,2",
            "end_of_record",
            "SF:/usr/include/stdio.h", "DA:1,1", "end_of_record", ""]))
        files = coverage.parse_info(info, [self.tree])
        self.assertEqual(list(files), ["d/f.c"])
        # lines hit/found, branches taken/found, functions hit/found
        self.assertEqual(coverage.figures(files["d/f.c"]), (2, 4, 2, 4, 1, 2))
        self.assertEqual(coverage.figures(files["d/f.c"], {2, 4}), (1, 2, 2, 4, 1, 2))
        self.assertEqual(coverage.figures(files["d/f.c"], {3}), (0, 0, 0, 0, 1, 2))


if __name__ == "__main__":
    unittest.main()
