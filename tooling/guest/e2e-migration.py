#!/usr/bin/env python3
"""End-to-end live migration by Debian's QEMU 7.2, inside the test VM.

Two QEMU instances (TCG), each with one migdev mdev through vfio-pci with
x-enable-migration=on: the source runs (its firmware finds nothing to boot
and idles), the destination waits with -incoming.  During pre-copy the
device writes guest memory through both DMA paths of the driver (pin + kmap,
and vfio_dma_rw) and keeps a working set pinned; after the switchover the
destination's memory must hold exactly what the device wrote and its device
state must equal the source's.  First, one migration is cancelled: the
source device must keep running and the next attempt must succeed.

Prints progress for a person and TAP for the test runner (--tap FILE).
usage: e2e-migration.py [--runs N] [--tap FILE] [--keep-dir DIR]
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

QEMU = "qemu-system-x86_64"
MDEV_TYPE = "migdev-1"
DEBUGFS = "/sys/kernel/debug/migdev"
GUEST_MB = 64
DMA_BASE = 0x2000000            # 32 MiB: above anything the firmware uses


class Fail(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def mdevs():
    bus = "/sys/bus/mdev/devices"
    out = []
    for name in sorted(os.listdir(bus)):
        if os.path.basename(os.readlink(f"{bus}/{name}/mdev_type")) == MDEV_TYPE:
            out.append(name)
    return out


class Qmp:
    def __init__(self, path, timeout=60):
        end = time.time() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.time() > end:
                    raise Fail(f"no QMP socket {path}")
                time.sleep(0.2)
        self.f = self.sock.makefile("rw")
        self._read()                                    # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while True:
            line = self.f.readline()
            if not line:
                raise Fail("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        msg = self._read()
        if "error" in msg:
            raise Fail(f"{name}: {msg['error'].get('desc')}")
        return msg["return"]

    def hmp(self, line):
        return self.cmd("human-monitor-command", **{"command-line": line})

    def close(self):
        self.sock.close()


class Vm:
    def __init__(self, name, uuid, workdir, incoming=None):
        self.name, self.uuid, self.workdir = name, uuid, workdir
        self.qmp_path = f"{workdir}/{name}.qmp"
        self.err_path = f"{workdir}/{name}.stderr"
        args = [QEMU, "-accel", "tcg", "-machine", "pc", "-m", str(GUEST_MB),
                "-nodefaults", "-no-user-config", "-display", "none",
                "-serial", "none", "-monitor", "none",
                "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
                "-device", f"vfio-pci,sysfsdev=/sys/bus/mdev/devices/{uuid},"
                           "x-enable-migration=on,id=migdev0"]
        if incoming:
            args += ["-incoming", incoming]
        if os.path.exists(self.qmp_path):
            os.unlink(self.qmp_path)
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=self.err, stderr=self.err)
        self.qmp = Qmp(self.qmp_path)

    def stderr(self):
        self.err.flush()
        with open(self.err_path) as f:
            return f.read()

    def wait_exit(self, timeout=30):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def quit(self):
        if self.proc.poll() is None:
            try:
                self.qmp.cmd("quit")
            except (Fail, OSError):
                pass
            if self.wait_exit(20) is None:
                self.proc.kill()
                self.proc.wait()
        self.qmp.close()
        self.err.close()


def ctl(uuid, what, text):
    with open(f"{DEBUGFS}/{uuid}/{what}", "w") as f:
        f.write(text)


def device_state(uuid):
    with open(f"{DEBUGFS}/{uuid}/state", "rb") as f:
        return f.read()


def pattern(length, seed):
    words = (length + 3) // 4 + 1
    raw = b"".join(((seed + k) & 0xffffffff).to_bytes(4, "little") for k in range(words))
    return raw[:length]


def memory(vm, addr, size):
    path = f"{vm.workdir}/{vm.name}-{addr:x}.bin"
    vm.qmp.cmd("pmemsave", val=addr, size=size, filename=path)
    with open(path, "rb") as f:
        data = f.read()
    os.unlink(path)
    return data


def wait_status(vm, want, timeout):
    end = time.time() + timeout
    while time.time() < end:
        info = vm.qmp.cmd("query-migrate")
        if info.get("status") in want:
            return info
        if info.get("status") == "failed":
            raise Fail(f"{vm.name}: migration failed: {info.get('error-desc')}")
        time.sleep(0.2)
    raise Fail(f"{vm.name}: migration status {info.get('status')} after {timeout}s")


def dma_round(uuid, rnd, writes):
    """Two writes per round, one per path; each straddles a page boundary."""
    for kind, base in (("rw", DMA_BASE), ("pin", DMA_BASE + 0x800000)):
        addr = base + rnd * 0x3000 + 0xffe
        length = 0x1804
        seed = (rnd << 8) | (1 if kind == "rw" else 2)
        ctl(uuid, "dma", f"{kind} {addr:#x} {length:#x} {seed:#x}")
        writes.append((addr, length, seed))


class Tap:
    def __init__(self):
        self.results = []

    def check(self, ok, name, detail=""):
        self.results.append((bool(ok), name, detail))
        log(f"  {'ok' if ok else 'FAILED'}: {name}" + (f" ({detail})" if detail else ""))
        return ok

    def write(self, path):
        with open(path, "w") as f:
            f.write(f"TAP version 13\n1..{len(self.results)}\n")
            for i, (ok, name, detail) in enumerate(self.results, 1):
                f.write(f"{'ok' if ok else 'not ok'} {i} {name}\n")
                if detail and not ok:
                    f.write(f"# {detail}\n")


def run_once(tap, run, src_uuid, dst_uuid, workdir):
    sock = f"{workdir}/migration.sock"
    vms = []
    try:
        log(f"run {run}: source QEMU on mdev {src_uuid}, destination on {dst_uuid}")
        src = Vm("source", src_uuid, workdir)
        vms.append(src)
        dst = Vm("destination", dst_uuid, workdir, incoming=f"unix:{sock}")
        vms.append(dst)
        tap.check(src.qmp.cmd("query-status")["running"], f"run {run}: source VM runs")
        info = src.qmp.cmd("query-migrate")
        tap.check(not info.get("blocked"), f"run {run}: no migration blocker",
                  ", ".join(info.get("blocked-reasons", [])))

        # 1. a migration that is cancelled
        src.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": 256 << 10,
                                                 "downtime-limit": 1})
        src.qmp.cmd("migrate", uri=f"unix:{sock}")
        wait_status(src, ("active",), 60)
        ctl(src_uuid, "dma", f"rw {DMA_BASE:#x} 0x10 0x7")
        src.qmp.cmd("migrate_cancel")
        wait_status(src, ("cancelled",), 60)
        dst.wait_exit(30)
        tap.check(src.qmp.cmd("query-status")["running"], f"run {run}: cancel leaves the source VM running")
        try:
            ctl(src_uuid, "dma", f"rw {DMA_BASE:#x} 0x10 0x8")
            tap.check(True, f"run {run}: cancel leaves the source device running (DMA works)")
        except OSError as e:
            tap.check(False, f"run {run}: cancel leaves the source device running (DMA works)", str(e))
        dst.quit()
        vms.remove(dst)

        # 2. the real one, with DMA during pre-copy
        dst = Vm("destination", dst_uuid, workdir, incoming=f"unix:{sock}")
        vms.append(dst)
        src.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": 2 << 20,
                                                 "downtime-limit": 1})
        src.qmp.cmd("migrate", uri=f"unix:{sock}")
        wait_status(src, ("active",), 60)
        writes = []
        ctl(src_uuid, "dma", f"keep {DMA_BASE + 0x1000000:#x} 0x2000 0")  # working set
        normal = src.qmp.cmd("query-migrate").get("ram", {}).get("normal", 0)
        for rnd in range(6):
            dma_round(src_uuid, rnd, writes)
            time.sleep(0.5)
            info = src.qmp.cmd("query-migrate")
            ram = info.get("ram", {})
            # the guest CPU idles: the non-zero pages QEMU sends are the
            # pages the kernel reported dirty (device writes, pinned pages)
            log(f"  pre-copy {rnd + 1}, {info['status']}: device wrote 6 pages, keeps 2 "
                f"pinned; QEMU sent {ram.get('normal', 0) - normal} pages the kernel "
                f"reported dirty (pinned ones at every sync), "
                f"{ram.get('dirty-sync-count', 0)} syncs so far")
            normal = ram.get("normal", 0)
        still_precopy = info["status"] == "active"
        tap.check(still_precopy, f"run {run}: the device wrote during pre-copy")
        ctl(src_uuid, "dma", "release 0 0 0")
        src.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 30,
                                                 "downtime-limit": 300})
        log("  device stops writing, working set released: letting pre-copy converge")
        info = wait_status(src, ("completed",), 120)
        ram = info.get("ram", {})
        log(f"  completed: total {info.get('total-time')} ms, downtime {info.get('downtime')} ms, "
            f"ram transferred {ram.get('transferred', 0) >> 10} KiB in "
            f"{ram.get('dirty-sync-count', 0)} dirty syncs")
        with open(f"{DEBUGFS}/{src_uuid}/saved") as f:
            log(f"  device state sent by the source device: {int(f.read())} bytes")
        wait_status(dst, ("completed",), 60)
        tap.check(dst.qmp.cmd("query-status")["running"], f"run {run}: destination VM runs")

        bad = 0
        for addr, length, seed in writes:
            lo, hi = addr - 16, addr + length + 16
            want = pattern(length, seed)
            d = memory(dst, lo, hi - lo)
            s = memory(src, lo, hi - lo)
            if d[16:16 + length] != want or d != s:
                bad += 1
                log(f"  MISMATCH at {addr:#x}+{length:#x} (seed {seed:#x})")
        tap.check(not bad, f"run {run}: destination memory holds what the device wrote, byte for byte",
                  f"{bad} of {len(writes)} ranges differ")
        a, b = device_state(src_uuid), device_state(dst_uuid)
        tap.check(a == b, f"run {run}: destination device state equals the source's "
                  f"({len(a)} bytes)")
        for vm in vms:
            errs = [l for l in vm.stderr().splitlines() if l.strip()]
            tap.check(not errs, f"run {run}: {vm.name} QEMU printed no error", " | ".join(errs[:5]))
    except (Fail, OSError, KeyError, json.JSONDecodeError) as e:
        tap.check(False, f"run {run}: migration", str(e))
        for vm in vms:
            log(f"--- {vm.name} QEMU stderr:\n{vm.stderr()}")
    finally:
        for vm in vms:
            vm.quit()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--tap")
    args = ap.parse_args()
    tap = Tap()
    devs = mdevs()
    if len(devs) < 2:
        # a runner that set the devices up lists them in VFIO_SELFTEST_REQUIRE
        # (as for the kselftests): then a missing device is a failure
        required = "migdev" in re.split(r"[ ,]+", os.environ.get("VFIO_SELFTEST_REQUIRE", ""))
        why = f"needs two {MDEV_TYPE} mdevs, found {len(devs)}"
        if required:
            why = f"required by VFIO_SELFTEST_REQUIRE, but {why}"
        if args.tap:
            with open(args.tap, "w") as f:
                f.write("TAP version 13\n1..1\n" +
                        (f"not ok 1 e2e #  {why}\n" if required else f"ok 1 e2e # SKIP {why}\n"))
        log(("FAIL: " if required else "SKIP: ") + why)
        return 1 if required else 0
    with tempfile.TemporaryDirectory(prefix="e2e.") as workdir:
        for run in range(1, args.runs + 1):
            run_once(tap, run, devs[0], devs[1], workdir)
    if args.tap:
        tap.write(args.tap)
    failed = sum(1 for ok, _, _ in tap.results if not ok)
    log(f"verdict: {'PASS' if not failed else 'FAIL'}: {len(tap.results) - failed} checks passed, "
        f"{failed} failed, {args.runs} migration run(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
