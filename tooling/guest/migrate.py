"""What the end-to-end migrations in the test VM share: QMP, the QEMU
instances (TCG) with a migdev mdev through vfio-pci, and TAP output."""
import json
import os
import re
import socket
import subprocess
import threading
import time

QEMU = "qemu-system-x86_64"
DEBUGFS = "/sys/kernel/debug/migdev"
TRACE_EVENT = "vfio_iommu_type1/vfio_iommu_type1_dirty_report"


class Fail(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def mdevs(mdev_type):
    bus = "/sys/bus/mdev/devices"
    out = []
    for name in sorted(os.listdir(bus)):
        if os.path.basename(os.readlink(f"{bus}/{name}/mdev_type")) == mdev_type:
            out.append(name)
    return out


def connect(path, what, timeout=60):
    """A socket connected to the Unix socket @path, once QEMU made it."""
    end = time.time() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX)
        try:
            sock.connect(path)
            return sock
        except OSError:
            sock.close()
            if time.time() > end:
                raise Fail(f"no {what} socket {path}")
            time.sleep(0.05)


class Trace:
    """The kernel's dirty reports, from the series' tracepoint, drained
    from trace_pipe when asked; @buffer_kb per CPU, for a caller that
    drains only at the end."""
    EVENT = re.compile(r"vfio_iommu_type1_dirty_report: (get|unmap) iova=0x([0-9a-f]+) "
                       r"size=0x([0-9a-f]+) pgsize=0x([0-9a-f]+) dirty=(\d+)")

    def __init__(self, buffer_kb=None):
        self.root = None
        for root in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing"):
            if not os.path.exists(f"{root}/events") and root == "/sys/kernel/tracing":
                subprocess.run(["mount", "-t", "tracefs", "nodev", root],
                               stderr=subprocess.DEVNULL)
            if os.path.exists(f"{root}/events/{TRACE_EVENT}/enable"):
                self.root = root
                break
        if not self.root:
            raise Fail(f"no tracepoint {TRACE_EVENT} in this kernel")
        self.buffer_kb = buffer_kb
        if buffer_kb:
            with open(f"{self.root}/buffer_size_kb") as f:
                self.buffer_kb = f.read().strip()
            self._write("buffer_size_kb", str(buffer_kb))
        self._write("trace", "")
        self._write(f"events/{TRACE_EVENT}/enable", "1")
        self.pipe = os.open(f"{self.root}/trace_pipe", os.O_RDONLY | os.O_NONBLOCK)
        self.partial = ""

    def _write(self, name, text):
        with open(f"{self.root}/{name}", "w") as f:
            f.write(text)

    def events(self):
        """The reports since the last call: (kind, iova, size, pgsize,
        dirty pages) each, kind "get" (GET_BITMAP) or "unmap" (UNMAP_DMA
        with a bitmap)."""
        data = self.partial
        while True:
            try:
                chunk = os.read(self.pipe, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk.decode(errors="replace")
        lines = data.split("\n")
        self.partial = lines.pop()
        out = []
        for line in lines:
            m = self.EVENT.search(line)
            if m:
                out.append((m.group(1), int(m.group(2), 16), int(m.group(3), 16),
                            int(m.group(4), 16), int(m.group(5))))
        return out

    def drain(self):
        """(GET_BITMAP calls, pages they reported, unmaps with a bitmap, pages)"""
        return summary(self.events())

    def lost(self):
        """Events the trace buffer dropped (overrun) since it was set up."""
        n = 0
        for cpu in os.listdir(f"{self.root}/per_cpu"):
            with open(f"{self.root}/per_cpu/{cpu}/stats") as f:
                n += int(re.search(r"overrun: (\d+)", f.read()).group(1))
        return n

    def close(self):
        self._write(f"events/{TRACE_EVENT}/enable", "0")
        os.close(self.pipe)
        if self.buffer_kb:
            self._write("buffer_size_kb", self.buffer_kb)


def summary(events):
    """(GET_BITMAP calls, pages they reported, unmaps with a bitmap, pages)
    of Trace.events()"""
    gets = got = unmaps = unmapped = 0
    for kind, _, _, _, dirty in events:
        if kind == "get":
            gets += 1
            got += dirty
        else:
            unmaps += 1
            unmapped += dirty
    return gets, got, unmaps, unmapped


class Qmp:
    def __init__(self, path, timeout=60):
        self.sock = connect(path, "QMP", timeout)
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
    """QEMU running the multiboot ELF @kernel, with the mdev @uuid through
    vfio-pci (a list: one vfio-pci device each, in that order, migdev0,
    migdev1...; QEMU puts them in one container); @before goes before the
    devices on the command line, @after after them."""

    def __init__(self, name, uuid, workdir, kernel, mem_mb, incoming=None,
                 machine="pc", before=(), after=(), env=None):
        self.name, self.uuid, self.workdir = name, uuid, workdir
        self.qmp_path = f"{workdir}/{name}.qmp"
        self.err_path = f"{workdir}/{name}.stderr"
        devices = []
        for i, u in enumerate([uuid] if isinstance(uuid, str) else uuid):
            devices += ["-device", f"vfio-pci,sysfsdev=/sys/bus/mdev/devices/{u},"
                                   f"x-enable-migration=on,id=migdev{i}"]
        args = [QEMU, "-accel", "tcg", "-machine", machine, "-m", str(mem_mb),
                "-nodefaults", "-no-user-config", "-display", "none",
                "-monitor", "none", "-kernel", kernel,
                "-qmp", f"unix:{self.qmp_path},server=on,wait=off", *before,
                *devices, *after]
        if "-serial" not in after:
            args += ["-serial", "none"]
        if incoming:
            args += ["-incoming", incoming]
        if os.path.exists(self.qmp_path):
            os.unlink(self.qmp_path)
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=self.err, stderr=self.err,
                                     env=env)
        try:
            self.qmp = Qmp(self.qmp_path)
        except Fail:
            self.proc.kill()
            self.proc.wait()
            self.err.close()
            raise Fail(f"{name} QEMU: no QMP; its stderr: {self.stderr().strip()}")

    def stderr(self):
        if not self.err.closed:
            self.err.flush()
        with open(self.err_path) as f:
            return f.read()

    def vfio_files(self):
        """(containers, groups): the /dev/vfio/vfio and /dev/vfio/<group>
        files QEMU holds open."""
        containers = groups = 0
        fds = f"/proc/{self.proc.pid}/fd"
        for fd in os.listdir(fds):
            try:
                target = os.readlink(f"{fds}/{fd}")
            except OSError:
                continue
            if target == "/dev/vfio/vfio":
                containers += 1
            elif re.fullmatch(r"/dev/vfio/\d+", target):
                groups += 1
        return containers, groups

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


def wait_status(vm, want, timeout):
    end = time.time() + timeout
    settle = 50
    while time.time() < end:
        info = vm.qmp.cmd("query-migrate")
        # the source says "completed" a moment before it sets the times
        if info.get("status") == "completed" and info.get("total-time") == 0 and settle:
            settle -= 1
            time.sleep(0.1)
            continue
        if info.get("status") in want:
            return info
        if info.get("status") == "failed":
            raise Fail(f"{vm.name}: migration failed: {info.get('error-desc')}")
        time.sleep(0.2)
    raise Fail(f"{vm.name}: migration status {info.get('status')} after {timeout}s")


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


def ctl(uuid, what, text):
    try:
        with open(f"{DEBUGFS}/{uuid}/{what}", "w") as f:
            f.write(text)
    except OSError as e:
        raise OSError(e.errno, f"{what} '{text}': {e.strerror}") from e


class Stepper(threading.Thread):
    """The device's internal state changes all the time, as a busy device's
    does: its pre-copy data never runs out while this runs, so pre-copy
    does not end however few pages the device's reports make QEMU send."""

    def __init__(self, uuid):
        super().__init__(daemon=True)
        self.uuid, self.stop, self.error = uuid, threading.Event(), None

    def run(self):
        # all 64 blocks every 50 ms: 256 KiB, which takes QEMU 250 ms
        # to send at the 1 MiB/s of pre-copy below
        while not self.stop.wait(0.05):
            try:
                ctl(self.uuid, "step", "64")
            except OSError as e:
                self.error = e
                return

    def finish(self):
        self.stop.set()
        self.join()
        if self.error:
            raise self.error


def finish(tap, path, summary):
    """Write the TAP file, print the verdict; the exit status."""
    if path:
        tap.write(path)
    failed = sum(1 for ok, _, _ in tap.results if not ok)
    log(f"verdict: {'PASS' if not failed else 'FAIL'}: {len(tap.results) - failed} checks passed, "
        f"{failed} failed{summary}")
    return 1 if failed else 0


def missing_devices(tap_path, name, why):
    """The mdevs a run needs are missing: a SKIP with @why, or a failure when
    the runner set them up and lists migdev in VFIO_SELFTEST_REQUIRE (as for
    the kselftests).  Writes the TAP file; returns the exit status."""
    required = "migdev" in re.split(r"[ ,]+", os.environ.get("VFIO_SELFTEST_REQUIRE", ""))
    if required:
        why = f"required by VFIO_SELFTEST_REQUIRE, but {why}"
    if tap_path:
        with open(tap_path, "w") as f:
            f.write("TAP version 13\n1..1\n" +
                    (f"not ok 1 {name} #  {why}\n" if required else f"ok 1 {name} # SKIP {why}\n"))
    log(("FAIL: " if required else "SKIP: ") + why)
    return 1 if required else 0
