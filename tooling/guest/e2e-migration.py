#!/usr/bin/env python3
"""End-to-end live migration by Debian's QEMU 7.2, inside the test VM.

Two QEMU instances (TCG), each with one migdev mdev through vfio-pci with
x-enable-migration=on: the source runs a bare-metal guest that keeps
writing one page (e2e-guest.c: pre-copy does not end while the test drives
the device), the destination waits with -incoming.  During pre-copy the
device keeps a working set of 256 pages pinned and, in each round, writes
guest memory through both DMA paths of the driver (pin + kmap, and
vfio_dma_rw) and into three pages of the working set; after the switchover
the destination's memory must hold exactly what the device wrote and its
device state must equal the source's.  First, one migration is cancelled:
the source device must keep running and the next attempt must succeed.

This runs with each mdev type: migdev-1, whose pinned pages type1 counts
as dirty at every report, and migdev-precise, which reports what its device
writes.  Per pre-copy round it prints the pages the kernel reported (the
tracepoint vfio_iommu_type1_dirty_report) and the pages QEMU sent, then the
two types side by side.

Prints progress for a person and TAP for the test runner (--tap FILE).
usage: e2e-migration.py --guest ELF [--runs N] [--tap FILE] [--types T,...]
"""
import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from migrate import (DEBUGFS, Fail, Stepper, Tap, Trace, Vm, ctl, finish, log, mdevs,
                     missing_devices, wait_status)  # noqa: E402

MDEV_TYPES = ("migdev-1", "migdev-precise")
GUEST_MB = 64
DMA_BASE = 0x2000000            # 32 MiB: above anything the firmware uses
WS_BASE = DMA_BASE + 0x1000000  # the pinned working set
WS_PAGES = 256
ROUNDS = 6
KEPT_PER_ROUND = 3              # pages of the working set written per round
GUEST = None                    # the multiboot ELF the VM runs (--guest)


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


def dma_round(uuid, rnd, writes):
    """Two writes per round, one per path; each straddles a page boundary."""
    for kind, base in (("rw", DMA_BASE), ("pin", DMA_BASE + 0x800000)):
        addr = base + rnd * 0x3000 + 0xffe
        length = 0x1804
        seed = (rnd << 8) | (1 if kind == "rw" else 2)
        ctl(uuid, "dma", f"{kind} {addr:#x} {length:#x} {seed:#x}")
        writes.append((addr, length, seed))


def pages(writes):
    """The guest pages (4 KiB) the writes touched."""
    return {p for addr, length, _ in writes
            for p in range(addr >> 12, ((addr + length - 1) >> 12) + 1)}


def kept_round(uuid, rnd, writes):
    """Writes into KEPT_PER_ROUND pages of the working set, which stay pinned."""
    for k in range(KEPT_PER_ROUND):
        addr = WS_BASE + (rnd * KEPT_PER_ROUND + k) * 0x1000 + 0x100
        seed = (rnd << 8) | (0x10 + k)
        ctl(uuid, "dma", f"kept {addr:#x} 0x40 {seed:#x}")
        writes.append((addr, 0x40, seed))


def run_once(tap, run, mdev_type, src_uuid, dst_uuid, workdir, trace):
    """One cancelled and one live migration; the per-round figures."""
    sock = f"{workdir}/migration.sock"
    vms = []
    rounds = []
    name = f"run {run}, {mdev_type}"
    try:
        log(f"{name}: source QEMU on mdev {src_uuid}, destination on {dst_uuid}")
        src = Vm("source", src_uuid, workdir, GUEST, GUEST_MB)
        vms.append(src)
        dst = Vm("destination", dst_uuid, workdir, GUEST, GUEST_MB, incoming=f"unix:{sock}")
        vms.append(dst)
        tap.check(src.qmp.cmd("query-status")["running"], f"{name}: source VM runs")
        info = src.qmp.cmd("query-migrate")
        tap.check(not info.get("blocked"), f"{name}: no migration blocker",
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
        tap.check(src.qmp.cmd("query-status")["running"], f"{name}: cancel leaves the source VM running")
        try:
            ctl(src_uuid, "dma", f"rw {DMA_BASE:#x} 0x10 0x8")
            tap.check(True, f"{name}: cancel leaves the source device running (DMA works)")
        except OSError as e:
            tap.check(False, f"{name}: cancel leaves the source device running (DMA works)", str(e))
        dst.quit()
        vms.remove(dst)

        # 2. the real one, with DMA during pre-copy
        dst = Vm("destination", dst_uuid, workdir, GUEST, GUEST_MB, incoming=f"unix:{sock}")
        vms.append(dst)
        src.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 20,
                                                 "downtime-limit": 1})
        ctl(src_uuid, "dma", f"keep {WS_BASE:#x} {WS_PAGES * 0x1000:#x} 0")
        stepper = Stepper(src_uuid)
        stepper.start()
        src.qmp.cmd("migrate", uri=f"unix:{sock}")
        wait_status(src, ("active",), 60)
        writes = []
        time.sleep(0.5)
        trace.drain()
        ram = src.qmp.cmd("query-migrate").get("ram", {})
        normal, syncs = ram.get("normal", 0), ram.get("dirty-sync-count", 0)
        for rnd in range(ROUNDS):
            before = len(writes)
            dma_round(src_uuid, rnd, writes)
            kept_round(src_uuid, rnd, writes)
            time.sleep(1)
            info = src.qmp.cmd("query-migrate")
            gets, got, _, _ = trace.drain()
            ram = info.get("ram", {})
            r = {"written": len(pages(writes[before:])),
                 "syncs": ram.get("dirty-sync-count", 0) - syncs,
                 "gets": gets, "reported": got, "sent": ram.get("normal", 0) - normal}
            rounds.append(r)
            # QEMU sends the pages the kernel reported and the guest's page
            log(f"  pre-copy round {rnd + 1}, {info['status']}: the device wrote {r['written']} pages "
                f"({KEPT_PER_ROUND} of the {WS_PAGES} it keeps pinned); {r['syncs']} dirty syncs, "
                f"kernel reported {r['reported']} pages in {gets} GET_BITMAPs, QEMU sent {r['sent']}")
            normal, syncs = ram.get("normal", 0), ram.get("dirty-sync-count", 0)
        still_precopy = info["status"] == "active"
        tap.check(still_precopy, f"{name}: the device wrote during pre-copy")
        reported = sum(r["reported"] for r in rounds)
        written = sum(r["written"] for r in rounds)
        if mdev_type == "migdev-precise":
            tap.check(reported == written,
                      f"{name}: the kernel reported each page the device wrote once, "
                      f"and no other ({reported} reported, {written} written)")
        else:
            want = sum(r["syncs"] for r in rounds) * WS_PAGES
            tap.check(reported >= want,
                      f"{name}: the kernel reported the pinned working set at every sync "
                      f"({reported} reported, >= {want})")
        stepper.finish()
        ctl(src_uuid, "dma", "release 0 0 0")
        src.qmp.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 30,
                                                 "downtime-limit": 300})
        log("  device stops writing and changing, working set released: "
            "letting pre-copy converge")
        info = wait_status(src, ("completed",), 120)
        ram = info.get("ram", {})
        log(f"  completed: total {info.get('total-time')} ms, downtime {info.get('downtime')} ms, "
            f"ram transferred {ram.get('transferred', 0) >> 10} KiB in "
            f"{ram.get('dirty-sync-count', 0)} dirty syncs")
        with open(f"{DEBUGFS}/{src_uuid}/saved") as f:
            log(f"  device state sent by the source device: {int(f.read())} bytes")
        wait_status(dst, ("completed",), 60)
        tap.check(dst.qmp.cmd("query-status")["running"], f"{name}: destination VM runs")

        bad = 0
        for addr, length, seed in writes:
            lo, hi = addr - 16, addr + length + 16
            want = pattern(length, seed)
            d = memory(dst, lo, hi - lo)
            s = memory(src, lo, hi - lo)
            if d[16:16 + length] != want or d != s:
                bad += 1
                log(f"  MISMATCH at {addr:#x}+{length:#x} (seed {seed:#x})")
        tap.check(not bad, f"{name}: destination memory holds what the device wrote, byte for byte",
                  f"{bad} of {len(writes)} ranges differ")
        a, b = device_state(src_uuid), device_state(dst_uuid)
        tap.check(a == b, f"{name}: destination device state equals the source's "
                  f"({len(a)} bytes)")
        for vm in vms:
            errs = [l for l in vm.stderr().splitlines() if l.strip()]
            tap.check(not errs, f"{name}: {vm.name} QEMU printed no error", " | ".join(errs[:5]))
    except (Fail, OSError, KeyError, json.JSONDecodeError) as e:
        tap.check(False, f"{name}: migration", str(e))
        for vm in vms:
            log(f"--- {vm.name} QEMU stderr:\n{vm.stderr()}")
    finally:
        for vm in vms:
            vm.quit()
    return rounds


def compare(results):
    """The types side by side, round by round."""
    types = list(results)
    if len(types) < 2 or not all(results[t] for t in types):
        return
    log("")
    log(f"pages per pre-copy round, the same device workload: the device wrote "
        f"{results[types[0]][0]['written']} pages a round, {KEPT_PER_ROUND} of them "
        f"among the {WS_PAGES} it keeps pinned")
    head = "round | " + " | ".join(f"{t}: syncs, kernel reported, QEMU sent" for t in types)
    log(head)
    for i in range(min(len(results[t]) for t in types)):
        cells = [f"{results[t][i]['syncs']:5d} {results[t][i]['reported']:8d} {results[t][i]['sent']:8d}"
                 for t in types]
        log(f"{i + 1:5d} | " + " | ".join(f"{c:>{len(t) + 33}}" for c, t in zip(cells, types)))
    for t in types:
        rep = [r["reported"] for r in results[t]]
        sent = [r["sent"] for r in results[t]]
        log(f"{t}: kernel reported {sum(rep)} pages in {len(rep)} rounds {rep}, QEMU sent {sum(sent)} {sent}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--tap")
    ap.add_argument("--types", default=",".join(MDEV_TYPES))
    ap.add_argument("--guest", required=True)
    args = ap.parse_args()
    global GUEST
    GUEST = args.guest
    types = args.types.split(",")
    tap = Tap()
    devs = {t: mdevs(t) for t in types}
    short = [t for t in types if len(devs[t]) < 2]
    if short:
        return missing_devices(args.tap, "e2e", "needs two mdevs of each type, found " +
                               ", ".join(f"{len(devs[t])} {t}" for t in types))
    try:
        trace = Trace()
    except (Fail, OSError) as e:
        tap.check(False, "the kernel's dirty reports can be traced", str(e))
        trace = None
    if trace:
        with tempfile.TemporaryDirectory(prefix="e2e.") as workdir:
            for run in range(1, args.runs + 1):
                results = {}
                for t in types:
                    results[t] = run_once(tap, run, t, devs[t][0], devs[t][1], workdir, trace)
                compare(results)
        trace.close()
    return finish(tap, args.tap, f", {args.runs} migration run(s) of each type")


if __name__ == "__main__":
    sys.exit(main())
