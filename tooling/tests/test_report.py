#!/usr/bin/env python3
"""Unit tests of tooling/report.py: TAP and KUnit parsing, the skip policy."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.dont_write_bytecode = True
import report  # noqa: E402


class Tmp(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def write(self, name, text):
        path = os.path.join(self.dir.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path


class ParseTap(Tmp):
    def test_pass_fail_skip(self):
        p = self.write("t.tap", "TAP version 13\n1..3\n"
                       "ok 1 a.one\n"
                       "not ok 2 a.two # bad value\n"
                       "ok 3 a.three # SKIP edu: no edu device\n")
        self.assertEqual(report.parse_tap(p, 0), [
            ("a.one", "PASS", ""),
            ("a.two", "FAIL", "bad value"),
            ("a.three", "SKIP", "edu: no edu device")])

    def test_missing_results(self):
        p = self.write("t.tap", "1..3\nok 1 a\n")
        r = report.parse_tap(p, 0)
        self.assertEqual(r[-1][:2], ("(missing results)", "FAIL"))

    def test_exit_status_without_failure(self):
        p = self.write("t.tap", "1..1\nok 1 a\n")
        self.assertEqual(report.parse_tap(p, 4), [("a", "PASS", "")])
        self.assertEqual(report.parse_tap(p, 139)[-1][:2], ("(exit status)", "FAIL"))

    def test_missing_file(self):
        r = report.parse_tap(os.path.join(self.dir.name, "none.tap"), None)
        self.assertEqual(r[0][1], "FAIL")

    def test_plan_at_end_and_whole_skip(self):
        p = self.write("t.tap", "ok 1 a\nok 2 b\n1..2\n")
        self.assertEqual([s for _, s, _ in report.parse_tap(p, 0)], ["PASS", "PASS"])
        p = self.write("s.tap", "1..0 # SKIP mtty: no mtty sample\n")
        self.assertEqual(report.parse_tap(p, 4), [("(all)", "SKIP", "mtty: no mtty sample")])


class SkipPolicy(unittest.TestCase):
    R = [("t1", "SKIP", "edu: no edu device"),
         ("t2", "SKIP", "kvm: not here"),
         ("t3", "SKIP", "no reason tag"),
         ("t4", "PASS", "")]

    def test_required_tag_fails(self):
        r = report.apply_policy(self.R, {"edu", "mtty"})
        self.assertEqual([s for _, s, _ in r], ["FAIL", "SKIP", "FAIL", "PASS"])
        self.assertIn("required by this configuration", r[0][2])

    def test_nothing_required(self):
        self.assertEqual(report.apply_policy(self.R, set()), self.R)

    def test_tag(self):
        self.assertEqual(report.skip_tag("migdev-module: not a module"), "migdev-module")
        self.assertIsNone(report.skip_tag("needs two mdevs"))


class Main(Tmp):
    def run_report(self, *args):
        return subprocess.run([sys.executable, os.path.join(os.path.dirname(HERE), "report.py")]
                              + list(args), capture_output=True, text=True)

    def test_kunit_and_policy_only_in_kselftest_suites(self):
        k = self.write("k.json", json.dumps({"name": "main", "sub_groups": [
            {"name": "vfio_dirty", "test_cases": [{"name": "a", "status": "PASS"},
                                                  {"name": "b", "status": "FAILURE"}]}]}))
        t = self.write("t.tap", "1..1\nok 1 x # SKIP edu: none\n")
        p = self.run_report("--kunit", k, "--require", "edu",
                            "--tap", f"e2e x={t}", "--tap", f"host={t}:0")
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stdout.rstrip().endswith("1 passed, 1 failed"), p.stdout)
        p = self.run_report("--require", "edu", "--tap", f"kselftest x={t}:0")
        self.assertIn("required by this configuration", p.stdout)
        self.assertTrue(p.stdout.rstrip().endswith("0 passed, 1 failed"), p.stdout)

    def test_green_and_times(self):
        t = self.write("t.tap", "1..2\nok 1 a\nok 2 b # SKIP kvm: none\n")
        times = self.write("times", "build 12.5\nVM 100\n")
        p = self.run_report("--require", "edu", "--times", times, "--tap", f"kselftest x={t}:0",
                            "--tap", f"lint (W=1)={t}:0")
        self.assertIn("ok    lint (W=1): 1 passed, 0 failed, 1 skipped", p.stdout)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertIn("stage times: build 12s, VM 100s, report", p.stdout)
        self.assertTrue(p.stdout.rstrip().endswith("2 passed, 0 failed"), p.stdout)


if __name__ == "__main__":
    unittest.main()
