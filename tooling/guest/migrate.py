"""What the end-to-end migrations in the test VM share: QMP, the QEMU
instances (TCG) with a migdev mdev through vfio-pci, and TAP output."""
import json
import os
import socket
import subprocess
import threading
import time

QEMU = "qemu-system-x86_64"
DEBUGFS = "/sys/kernel/debug/migdev"


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
    vfio-pci; @before goes before the device on the command line, @after
    after it."""

    def __init__(self, name, uuid, workdir, kernel, mem_mb, incoming=None,
                 machine="pc", before=(), after=(), env=None):
        self.name, self.uuid, self.workdir = name, uuid, workdir
        self.qmp_path = f"{workdir}/{name}.qmp"
        self.err_path = f"{workdir}/{name}.stderr"
        args = [QEMU, "-accel", "tcg", "-machine", machine, "-m", str(mem_mb),
                "-nodefaults", "-no-user-config", "-display", "none",
                "-monitor", "none", "-kernel", kernel,
                "-qmp", f"unix:{self.qmp_path},server=on,wait=off", *before,
                "-device", f"vfio-pci,sysfsdev=/sys/bus/mdev/devices/{uuid},"
                           "x-enable-migration=on,id=migdev0", *after]
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
