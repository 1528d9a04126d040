#!/usr/bin/env python3
"""Unit tests of tooling/kcsan.py: splitting a console, judging reports."""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
KCSAN = os.path.join(os.path.dirname(HERE), "kcsan.py")
RULE = "=" * 66


def report(title, first, second, t="12.5"):
    lines = [RULE, f"BUG: KCSAN: data-race in {title}", "",
             "write to 0xffff888003a1b2c8 of 8 bytes by task 123 on cpu 1:"]
    lines += [f" {f}+0x1a/0x80" for f in first]
    lines += ["", "read to 0xffff888003a1b2c8 of 8 bytes by task 124 on cpu 0:"]
    lines += [f" {f}+0x3c/0x90" for f in second]
    lines += ["", "Reported by Kernel Concurrency Sanitizer on:",
              "CPU: 0 UID: 0 PID: 124 Comm: t Not tainted 6.12.118-race #1", RULE]
    return "".join(f"[   {t}] {ln}\n" for ln in lines)


class Kcsan(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.nm = self.path("vfio.nm")
        with open(self.nm, "w") as f:
            f.write("0000000000000010 T vfio_dirty_mark\n"
                    "0000000000000020 t vfio_iommu_dirty_report\n"
                    "                 U memcpy\n")

    def path(self, name):
        return os.path.join(self.dir.name, name)

    def run_kcsan(self, *args):
        return subprocess.run([sys.executable, KCSAN, *args], capture_output=True, text=True)

    def split(self, console):
        with open(self.path("console.log"), "w") as f:
            f.write(console)
        r = self.run_kcsan("split", self.path("console.log"), self.path("kcsan.txt"),
                           self.path("rest"))
        self.assertEqual(r.returncode, 0, r.stderr)
        return int(r.stdout), open(self.path("kcsan.txt")).read(), open(self.path("rest")).read()

    def test_split_keeps_other_splats(self):
        ours = report("vfio_dirty_mark / vfio_iommu_dirty_report",
                      ["vfio_dirty_mark", "vfio_pin_pages"], ["vfio_iommu_dirty_report"])
        n, reports, rest = self.split("[    1.0] booting\n" + ours +
                                      "[    2.0] WARNING: CPU: 0 PID: 1 at x\n")
        self.assertEqual(n, 1)
        self.assertEqual(reports, ours)
        self.assertIn("WARNING: CPU: 0", rest)
        self.assertNotIn("KCSAN", rest)

    def check(self, console):
        self.split(console)
        return self.run_kcsan("check", self.path("kcsan.txt"), self.nm)

    def test_ours_fails(self):
        r = self.check(report("vfio_dirty_mark / vfio_iommu_dirty_report",
                              ["vfio_dirty_mark"], ["vfio_iommu_dirty_report"]))
        self.assertEqual(r.returncode, 1)
        self.assertIn("not ok 1 KCSAN data-race in vfio_dirty_mark / vfio_iommu_dirty_report", r.stdout)

    def test_helper_called_by_ours_fails(self):
        # the racing access is in memcpy, called from our code: ours
        r = self.check(report("memcpy / memcpy", ["memcpy", "vfio_iommu_dirty_report"],
                              ["memcpy", "copy_page_x"]))
        self.assertEqual(r.returncode, 1)
        self.assertIn("vfio_iommu_dirty_report", r.stdout)

    def test_elsewhere_is_listed(self):
        r = self.check(report("tick_sched_do_timer / tick_nohz_next_event",
                              ["tick_sched_do_timer", "a", "b", "vfio_dirty_mark"],
                              ["tick_nohz_next_event"]) +
                       report("tick_sched_do_timer / tick_nohz_next_event",
                              ["tick_sched_do_timer"], ["tick_nohz_next_event"], t="13.0"))
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertEqual(r.stdout.splitlines(), [
            "ok 1 KCSAN data-race in tick_sched_do_timer / tick_nohz_next_event (2 reports)"
            " # SKIP listed: elsewhere in the kernel", "1..1"])


if __name__ == "__main__":
    unittest.main()
