#!/usr/bin/env python3
"""Live migration behind a vIOMMU by Debian's QEMU 7.2, inside the test VM.

Source and destination QEMU (TCG, q35, intel-iommu caching-mode=on) each
with a migdev-1 mdev through vfio-pci with x-enable-migration=on.  The
guest (viommu-guest.c) maps N IOVA pages of 4 KiB in the vIOMMU, so QEMU
holds N type1 mappings: at every dirty sync it asks GET_BITMAP once per
mapping, and an unmap during pre-copy is an UNMAP_DMA with a dirty bitmap.
Once pre-copy is past its first pass the guest has the device write pages
through both DMA paths and unmaps and maps again some it just wrote (their
dirty bits reach QEMU only through the unmap's bitmap).  After the
switchover the guest on the destination checks every page byte for byte
and runs one more DMA per path through the moved mappings.

QEMU runs with ioctl-stats.so preloaded: the count and time of its
GET_BITMAP and UNMAP_DMA calls.  Prints them with the migration's own
figures, one line of key=value for tooling/viommu to tabulate, and TAP
(--tap FILE).

usage: viommu-migration.py --guest ELF --stats SO [-n MAPPINGS] [-r ROUNDS]
                           [-k WRITES] [-u UNMAPS] [--tap FILE]
       viommu-migration.py --table NAME=LOG[,LOG...]...  medians of the runs, side by side
"""
import argparse
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from migrate import (Fail, Stepper, Tap, Trace, Vm, connect, finish, log, mdevs,
                     missing_devices, wait_status)  # noqa: E402

MDEV_TYPE = "migdev-1"
GUEST_MB = 128


class Serial(threading.Thread):
    """The guest's COM1, through a chardev socket: lines out, bytes in."""

    def __init__(self, path, timeout=60):
        super().__init__(daemon=True)
        self.sock = connect(path, "serial", timeout)
        self.lines, self.cond = [], threading.Condition()
        self.start()

    def run(self):
        buf = b""
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                data = b""
            with self.cond:
                if not data:
                    self.lines.append(None)
                    self.cond.notify_all()
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    self.lines.append(line.decode(errors="replace"))
                self.cond.notify_all()

    def expect(self, prefix, timeout, after=0):
        """The first line from index @after on that starts with @prefix."""
        end = time.time() + timeout
        with self.cond:
            while True:
                for i in range(after, len(self.lines)):
                    line = self.lines[i]
                    if line is None:
                        raise Fail(f"serial closed waiting for '{prefix}'")
                    if line.startswith("FAIL"):
                        raise Fail(f"guest: {line}")
                    if line.startswith(prefix):
                        return i, line
                left = end - time.time()
                if left <= 0:
                    raise Fail(f"no '{prefix}' from the guest in {timeout}s "
                               f"(last: {self.lines[-1:]})")
                self.cond.wait(left)

    def send(self, text):
        self.sock.sendall(text.encode())

    def close(self):
        self.sock.close()


def stats(path):
    out = {}
    with open(path) as f:
        for line in f:
            kind, calls, ns, slowest = line.split()
            out[kind] = (int(calls), int(ns), int(slowest))
    return out


def fields(line):
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)


def run(tap, args, src_uuid, dst_uuid, workdir):
    sock = f"{workdir}/migration.sock"
    statfile = f"{workdir}/source.ioctls"
    env = dict(os.environ, LD_PRELOAD=args.stats, VFIO_IOCTL_STATS=statfile)
    cmdline = f"n={args.n} r={args.rounds} k={args.writes} u={args.unmaps}"
    vms, serials = [], []
    res = {"mappings": args.n}
    name = f"vIOMMU, {args.n} mappings"

    def vm(role, uuid, incoming=None):
        serial = f"{workdir}/{role}.serial"
        # the source starts paused (-S) until its COM1 is connected: what
        # the guest says first, an early failure included, is not lost
        v = Vm(role, uuid, workdir, args.guest, GUEST_MB, incoming=incoming, machine="q35",
               before=["-device", "intel-iommu,caching-mode=on", "-append", cmdline,
                       *([] if incoming else ["-S"])],
               after=["-chardev", f"socket,id=com1,path={serial},server=on,wait=off",
                      "-serial", "chardev:com1"],
               env=env if role == "source" else None)
        vms.append(v)
        s = Serial(serial)
        serials.append(s)
        return v, s

    trace = None
    try:
        try:
            # the series' tracepoint, where the kernel has it: a check of
            # ioctl-stats.so (the bench kernels have no tracing)
            trace = Trace(buffer_kb=65536)
        except Fail:
            pass
        t0 = time.time()
        src, src_com = vm("source", src_uuid)
        dst, dst_com = vm("destination", dst_uuid, incoming=f"unix:{sock}")
        src.qmp.cmd("cont")
        _, line = src_com.expect("ready", 600)
        res["boot_s"] = round(time.time() - t0, 1)
        tap.check(line == f"ready n={args.n}",
                  f"{name}: the guest mapped its IOVA pages through the vIOMMU", line)
        log(f"  guest: {line} ({res['boot_s']} s after QEMU started)")
        info = src.qmp.cmd("query-migrate")
        tap.check(not info.get("blocked"), f"{name}: no migration blocker",
                  ", ".join(info.get("blocked-reasons", [])))

        # pre-copy goes on while the device state changes (256 KiB every
        # 50 ms) and the limit is 16 KiB (1 ms at 16 MiB/s)
        src.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": 16 << 20, "downtime-limit": 1})
        stepper = Stepper(src_uuid)
        stepper.start()
        src.qmp.cmd("migrate", uri=f"unix:{sock}")
        end = time.time() + args.timeout
        while True:
            info = wait_status(src, ("active",), 60)
            if info.get("ram", {}).get("dirty-sync-count", 0) >= 2:
                break
            if time.time() > end:
                raise Fail("pre-copy did not get past its first pass")
            time.sleep(0.2)
        log(f"  pre-copy past its first pass after {round(time.time() - t0 - res['boot_s'], 1)} s:"
            f" the guest has the device write and unmaps")
        mark = len(src_com.lines)
        src_com.send("g")
        _, line = src_com.expect("done", args.timeout, mark)
        done = line.split()
        res["written"], res["unmapped"] = int(done[1]), int(done[2])
        info = src.qmp.cmd("query-migrate")
        tap.check(info.get("status") == "active",
                  f"{name}: the device wrote and the guest unmapped during pre-copy",
                  f"status {info.get('status')}")
        log(f"  guest: {res['written']} device writes, {res['unmapped']} unmaps and maps again;"
            " letting pre-copy converge")
        stepper.finish()
        src.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 30,
                                                 "downtime-limit": 60000})
        info = wait_status(src, ("completed",), args.timeout)
        ram = info.get("ram", {})
        res.update(total_ms=info.get("total-time"), downtime_ms=info.get("downtime"),
                   syncs=ram.get("dirty-sync-count", 0))
        log(f"  completed: total {res['total_ms']} ms, downtime {res['downtime_ms']} ms, "
            f"{res['syncs']} dirty syncs, {ram.get('transferred', 0) >> 10} KiB")
        wait_status(dst, ("completed",), 60)
        tap.check(dst.qmp.cmd("query-status")["running"], f"{name}: destination VM runs")

        mark = len(dst_com.lines)
        dst_com.send("v")
        _, line = dst_com.expect("verify", args.timeout, mark)
        log(f"  guest on the destination: {line}")
        v = fields(line)
        tap.check(v.get("badpages") == "0" and int(v.get("written", -1)) > 0,
                  f"{name}: every page holds what the device and the CPU wrote, byte for byte",
                  line)
        tap.check(v.get("dma") == "ok",
                  f"{name}: DMA through the vIOMMU mappings after the switchover", line)

        src.quit()
        st = stats(statfile)
        res.update({k.replace("-", "_"): st[k][0] for k in st})
        res.update({k.replace("-", "_") + "_ms": round(st[k][1] / 1e6, 1) for k in st})
        res["get_ms_per_sync"] = round(st["get-bitmap"][1] / 1e6 / max(res["syncs"], 1), 2)
        res["get_us_per_call"] = round(st["get-bitmap"][1] / 1e3 / max(st["get-bitmap"][0], 1), 2)
        log(f"  source QEMU's type1 ioctls: {st['map'][0]} MAP_DMA, "
            f"{st['get-bitmap'][0]} GET_BITMAP in {res['get_bitmap_ms']} ms "
            f"({res['get_ms_per_sync']} ms per sync, {res['get_us_per_call']} us per call), "
            f"{st['unmap-bitmap'][0]} UNMAP_DMA with a bitmap in {res['unmap_bitmap_ms']} ms, "
            f"{st['unmap'][0]} without")
        tap.check(st["map"][0] >= args.n, f"{name}: QEMU mapped every IOVA page of the guest",
                  f"{st['map'][0]} MAP_DMA")
        tap.check(st["get-bitmap"][0] >= 2 * args.n,
                  f"{name}: QEMU asked GET_BITMAP per mapping at the syncs",
                  f"{st['get-bitmap'][0]} calls, {args.n} mappings")
        tap.check(st["unmap-bitmap"][0] >= res["unmapped"],
                  f"{name}: each unmap during pre-copy was an UNMAP_DMA with a dirty bitmap",
                  f"{st['unmap-bitmap'][0]} of them, {res['unmapped']} unmaps")
        if trace:
            lost = trace.lost()
            gets, _, unmaps, unmapped = trace.drain()
            log(f"  the kernel's tracepoint: {unmapped} dirty pages reached QEMU through "
                f"the bitmaps of the {unmaps} unmaps (the others through a GET_BITMAP "
                "before the unmap)")
            tap.check(not lost and gets == st["get-bitmap"][0] and unmaps == st["unmap-bitmap"][0],
                      f"{name}: the kernel's tracepoint counts the calls ioctl-stats.so counts",
                      f"{gets} GET and {unmaps} UNMAP reports traced, {lost} events lost")
        for v in vms:
            errs = [e for e in v.stderr().splitlines() if e.strip()]
            tap.check(not errs, f"{name}: {v.name} QEMU printed no error", " | ".join(errs[:5]))
        log("viommu-result " + " ".join(f"{k}={v}" for k, v in res.items()))
    except (Fail, OSError, KeyError, ValueError, IndexError) as e:
        tap.check(False, f"{name}: migration", str(e))
        for v in vms:
            log(f"--- {v.name} QEMU stderr:\n{v.stderr()}")
        for v, s in zip(vms, serials):
            log(f"--- {v.name} guest serial: {s.lines[-5:]}")
    finally:
        for s in serials:
            s.close()
        for v in vms:
            v.quit()
        if trace:
            trace.close()


ROWS = (("mappings", "IOVA mappings of 4 KiB", "{}"),
        ("total_ms", "migration total time", "{} ms"),
        ("downtime_ms", "downtime", "{} ms"),
        ("syncs", "dirty-sync rounds", "{}"),
        ("get_bitmap", "GET_BITMAP calls", "{}"),
        ("get_bitmap_ms", "time in GET_BITMAP", "{} ms"),
        ("get_ms_per_sync", "time in GET_BITMAP per sync round", "{} ms"),
        ("get_us_per_call", "time per GET_BITMAP", "{} us"),
        ("unmap_bitmap", "UNMAP_DMA with a bitmap", "{}"),
        ("unmap_bitmap_ms", "time in them", "{} ms"),
        ("written", "pages the device wrote in pre-copy", "{}"),
        ("unmapped", "of them unmapped and mapped again", "{}"))


def table(runs):
    """Print the viommu-result lines of NAME=LOG[,LOG...] runs side by side:
    per kernel the median over its runs (and the range when there are more)."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import table as tab     # tooling/table.py, on the host
    res, spread = {}, {}
    for arg in runs:
        name, paths = arg.split("=", 1)
        got = []
        for path in paths.split(","):
            with open(path) as f:
                lines = [l for l in f if l.startswith("viommu-result ")]
            if lines:
                got.append(fields(lines[-1]))
        res[name], spread[name] = {}, {}
        if not got or len(got) < len(paths.split(",")):
            continue
        for key in got[0]:
            vals = sorted(float(g[key]) for g in got)
            res[name][key] = f"{tab.median(vals):.10g}"
            if vals[0] != vals[-1]:
                spread[name][key] = f" ({vals[0]:.10g}-{vals[-1]:.10g})"
    names = list(res)
    pair = len(names) == 2
    rows = []
    for key, label, fmt in ROWS:
        cells = [fmt.format(res[n][key]) + spread[n].get(key, "") if key in res[n]
                 else "(no result)" for n in names]
        ratio = ""
        if pair and key in ("total_ms", "downtime_ms", "get_bitmap_ms",
                            "get_ms_per_sync", "get_us_per_call"):
            try:
                ratio = f"{float(res[names[0]][key]) / float(res[names[1]][key]):,.1f}x"
            except (KeyError, ValueError, ZeroDivisionError):
                ratio = ""
        rows.append([label, *cells] + ([ratio] if pair else []))
    tab.show(tab.markdown(["", *names] + (["ratio"] if pair else []), rows))
    return 0 if all(res.values()) else 1

def main():
    if sys.argv[1:2] == ["--table"]:
        return table(sys.argv[2:])
    ap = argparse.ArgumentParser()
    ap.add_argument("--guest", required=True)
    ap.add_argument("--stats", required=True)
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("-r", "--rounds", type=int, default=4)
    ap.add_argument("-k", "--writes", type=int, default=16)
    ap.add_argument("-u", "--unmaps", type=int, default=8)
    ap.add_argument("--timeout", type=int, default=1800)
    ap.add_argument("--tap")
    args = ap.parse_args()
    tap = Tap()
    devs = mdevs(MDEV_TYPE)
    if len(devs) < 2:
        return missing_devices(args.tap, "viommu",
                               f"needs two {MDEV_TYPE} mdevs, found {len(devs)}")
    log(f"vIOMMU migration: {args.n} IOVA mappings of 4 KiB, {args.rounds} rounds of "
        f"{args.writes} device writes and {args.unmaps} unmaps during pre-copy")
    with tempfile.TemporaryDirectory(prefix="viommu.") as workdir:
        run(tap, args, devs[0], devs[1], workdir)
    return finish(tap, args.tap, "")


if __name__ == "__main__":
    sys.exit(main())
