#!/usr/bin/env python3
"""The patch series as the repository stores it, and the trees made from it.

patches/series lists the series in order.  Each entry names a patch file
(commit message + edits to files that exist in the base) and the new files
the patch introduces; those live at their in-tree paths in this repository,
in their final form.  A later patch may edit a file an earlier one adds:
its diff of that file is in its patch file too, and the file as the earlier
patch added it is the final form with the later diffs taken back.

  series.py check                      manifest and repository agree
  series.py assemble BASE TREE [N...]  make TREE = BASE + series, touching
                                       only files whose content changes;
                                       with patch numbers N, only those
                                       patches, MAINTAINERS left as it is
                                       (its hunks rest on the others')
  series.py commit  BASE GITTREE       commit the series on GITTREE's HEAD,
                                       one commit per entry
  series.py refresh GITTREE BASEREV    write GITTREE's commits BASEREV..HEAD
                                       back into patches/ and the new files
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATCHES = os.path.join(TOP, "patches")
SERIES = os.path.join(PATCHES, "series")
# Top-level directories of this repository that hold kernel files.
KERNEL_DIRS = ("Documentation", "drivers", "include", "samples", "tools")
RECORD = ".vfio-mig-placed"


class Entry:
    def __init__(self, patch, subject):
        self.patch = patch
        self.subject = subject
        self.adds = []

    def text(self):
        with open(os.path.join(PATCHES, self.patch)) as f:
            return f.read()

    def message(self):
        """Commit message: everything before the '---' separator."""
        msg = re.split(r"^---$", self.text(), maxsplit=1, flags=re.M)[0]
        m = re.match(r"Subject: (.*)\n\n", msg)
        if not m:
            die(f"{self.patch}: must start with 'Subject: ...' and a blank line")
        return m.group(1) + "\n\n" + msg[m.end():].strip() + "\n"

    def diff(self):
        t = self.text()
        i = t.find("\ndiff --git ")
        return t[i + 1:] if i >= 0 else ""

    def touched(self):
        return re.findall(r"^\+\+\+ b/(\S+)", self.diff(), flags=re.M)

    def file_diffs(self):
        """{path: the part of the diff that edits path}"""
        out = {}
        for part in re.split(r"(?=^diff --git )", self.diff(), flags=re.M):
            m = re.search(r"^\+\+\+ b/(\S+)", part, flags=re.M)
            if m:
                out[m.group(1)] = part
        return out


def ours(entries):
    """Paths the series adds."""
    return {a for e in entries for a in e.adds}


def die(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def parse():
    entries = []
    with open(SERIES) as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0].isspace():
                m = re.match(r"\s+\+\s+(\S+)\s*$", line)
                if not m or not entries:
                    die(f"patches/series:{n}: expected '  + path/of/new/file'")
                entries[-1].adds.append(m.group(1))
            else:
                m = re.match(r"(\S+\.patch)\s+(.+?)\s*$", line)
                if not m:
                    die(f"patches/series:{n}: expected 'NNNN-name.patch  subject'")
                entries.append(Entry(m.group(1), m.group(2)))
    return entries


def check(entries, base=None):
    seen = {}
    for e in entries:
        if not os.path.isfile(os.path.join(PATCHES, e.patch)):
            die(f"patches/series names {e.patch}, which does not exist")
        subj = e.message().split("\n", 1)[0]
        if subj != e.subject:
            die(f"{e.patch}: Subject '{subj}' differs from patches/series '{e.subject}'")
        for a in e.adds:
            if a in seen:
                die(f"{a} is added by both {seen[a]} and {e.patch}")
            seen[a] = e.patch
            if not os.path.isfile(os.path.join(TOP, a)):
                die(f"{e.patch} adds {a}, which is not in the repository")
            if base and os.path.exists(os.path.join(base, a)):
                die(f"{a} exists in the base: edit it with a patch instead")
        for t in e.touched():
            if t in ours(entries) and (t in e.adds or t not in seen):
                die(f"{e.patch} edits {t} before a patch adds it")
    listed = {a for e in entries for a in e.adds}
    on_disk = subprocess.run(["git", "-C", TOP, "ls-files", "--cached", "--others",
                              "--exclude-standard", "--", *KERNEL_DIRS],
                             capture_output=True, text=True, check=True).stdout.split()
    stray = sorted(set(on_disk) - listed)
    if stray:
        die("files at kernel paths that no patch introduces (add them to "
            "patches/series): " + " ".join(stray))
    listed_patches = {e.patch for e in entries}
    for p in os.listdir(PATCHES):
        if p.endswith(".patch") and p not in listed_patches:
            die(f"patches/{p} is not listed in patches/series")


def run_patch(tmp, diff, *opts):
    """Apply (or with "-R", take back) @diff in directory @tmp; '' or patch's report."""
    r = subprocess.run(["patch", "-p1", *opts, "-F0", "--batch",
                        "--no-backup-if-mismatch", "-r", "-", "-d", tmp],
                       input=diff, capture_output=True, text=True)
    return f"{r.stdout}{r.stderr}" if r.returncode else ""


def apply_edits(entries, base, skip=()):
    """Return {path: bytes} for every base file the patches edit but @skip."""
    mine = ours(entries) | set(skip)
    touched = sorted({t for e in entries for t in e.touched()} - mine)
    out = {}
    with tempfile.TemporaryDirectory(prefix="vfio-mig-apply.") as tmp:
        for t in touched:
            src = os.path.join(base, t)
            if not os.path.isfile(src):
                die(f"patches edit {t}, which is not in the base tree")
            os.makedirs(os.path.dirname(os.path.join(tmp, t)), exist_ok=True)
            shutil.copyfile(src, os.path.join(tmp, t))
        for e in entries:
            d = "".join(v for k, v in e.file_diffs().items() if k not in mine)
            if not d:
                continue
            err = run_patch(tmp, d, "-N")
            if err:
                die(f"patches/{e.patch} does not apply:\n{err}")
        for t in touched:
            with open(os.path.join(tmp, t), "rb") as f:
                out[t] = f.read()
    return out


def put(path, data):
    """Replace path with data, unless it already holds exactly that."""
    try:
        with open(path, "rb") as f:
            if f.read() == data:
                return False
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".vfio-mig-tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)       # new inode: never writes through a hard link
    return True


def assemble(base, tree, *only):
    entries = parse()
    check(entries, base)
    skip = ()
    if only:
        picked = [e for e in entries if e.patch[:4] in only]
        if len(picked) != len(only):
            die(f"no such patches among {' '.join(only)}")
        for i, e in enumerate(entries):
            for later in entries[i + 1:]:
                if e in picked and set(e.adds) & set(later.touched()):
                    die(f"{later.patch} edits a file {e.patch} adds: "
                        "cannot assemble a subset with it")
        entries, skip = picked, ("MAINTAINERS",)
    want = apply_edits(entries, base, skip)
    for e in entries:
        for a in e.adds:
            with open(os.path.join(TOP, a), "rb") as f:
                want[a] = f.read()
    rec = os.path.join(tree, RECORD)
    old = set()
    if os.path.exists(rec):
        with open(rec) as f:
            old = set(f.read().split())
    with open(rec, "w") as f:           # survive an interrupted run
        f.write("\n".join(sorted(old | set(want))) + "\n")
    changed = [p for p in sorted(want) if put(os.path.join(tree, p), want[p])]
    for p in sorted(old - set(want)):
        src = os.path.join(base, p)
        if os.path.exists(src):
            with open(src, "rb") as f:
                if put(os.path.join(tree, p), f.read()):
                    changed.append(p)
        elif os.path.exists(os.path.join(tree, p)):
            os.unlink(os.path.join(tree, p))
            changed.append(p)
    with open(rec, "w") as f:
        f.write("\n".join(sorted(want)) + "\n")
    for p in changed:
        print(f"   updated {p}")
    return changed


def git(tree, *args, **kw):
    return subprocess.run(["git", "-C", tree, *args], check=True, text=True, **kw)


def staged(entries):
    """{(entry index, path): bytes} of each file of ours as its adder adds it."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="vfio-mig-stage.") as tmp:
        for i, e in enumerate(entries):
            for a in e.adds:
                dst = os.path.join(tmp, a)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copyfile(os.path.join(TOP, a), dst)
                for later in reversed(entries[i + 1:]):
                    d = later.file_diffs().get(a)
                    if not d:
                        continue
                    err = run_patch(tmp, d, "-R")
                    if err:
                        die(f"patches/{later.patch} does not take back from {a}:\n{err}")
                with open(dst, "rb") as f:
                    out[(i, a)] = f.read()
    return out


def commit(base, tree):
    entries = parse()
    check(entries, base)
    first = staged(entries)
    for i, e in enumerate(entries):
        d = e.diff()
        if d:
            r = subprocess.run(["git", "-C", tree, "apply", "--index", "-"],
                               input=d, capture_output=True, text=True)
            if r.returncode:
                die(f"patches/{e.patch} does not apply:\n{r.stderr}")
        for a in e.adds:
            dst = os.path.join(tree, a)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, "wb") as f:
                f.write(first[(i, a)])
            shutil.copymode(os.path.join(TOP, a), dst)
            git(tree, "add", "-f", a)
        git(tree, "commit", "-q", "--allow-empty", "-F", "-", input=e.message())


def slug(subject):
    s = re.sub(r"[^A-Za-z0-9]+", "-", subject).strip("-").lower()
    return s[:52].rstrip("-")


def refresh(tree, baserev):
    revs = git(tree, "rev-list", "--reverse", f"{baserev}..HEAD",
               capture_output=True).stdout.split()
    if not revs:
        die("no commits on top of the base")
    entries = []
    for n, rev in enumerate(revs, 1):
        msg = git(tree, "log", "-1", "--format=%B", rev, capture_output=True).stdout
        subject, _, body = msg.partition("\n")
        status = git(tree, "diff-tree", "--no-commit-id", "-r", "--no-renames",
                     "--name-status", rev, capture_output=True).stdout.split("\n")
        adds, edits = [], []
        for line in filter(None, status):
            st, path = line.split("\t", 1)
            if st == "A":
                adds.append(path)
            elif st == "M":
                edits.append(path)
            else:
                die(f"{rev[:12]} '{subject}': {st} {path} is not supported "
                    "(only new files and edits to base files)")
        diff = ""
        if edits:
            diff = git(tree, "diff", "--no-renames", f"{rev}^", rev, "--", *edits,
                       capture_output=True).stdout
        e = Entry(f"{n:04d}-{slug(subject)}.patch", subject)
        e.adds = adds
        with open(os.path.join(PATCHES, e.patch + ".new"), "w") as f:
            f.write(f"Subject: {subject}\n\n{body.strip()}\n")
            if diff:
                f.write("---\n" + diff)
        entries.append(e)
        for a in adds:
            dst = os.path.join(TOP, a)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            data = git(tree, "show", f"HEAD:{a}", capture_output=True).stdout
            with open(dst, "w") as f:
                f.write(data)
    for p in os.listdir(PATCHES):
        if p.endswith(".patch"):
            os.unlink(os.path.join(PATCHES, p))
    for e in entries:
        os.rename(os.path.join(PATCHES, e.patch + ".new"),
                  os.path.join(PATCHES, e.patch))
    with open(SERIES) as f:
        header = [l for l in f if l.startswith("#")]
    with open(SERIES, "w") as f:
        f.writelines(header)
        for e in entries:
            f.write(f"\n{e.patch}  {e.subject}\n")
            for a in e.adds:
                f.write(f"\t+ {a}\n")
    print(f"wrote {len(entries)} patches to patches/ and patches/series")


def main():
    if len(sys.argv) < 2:
        die(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "check":
        check(parse(), args[0] if args else None)
    elif cmd == "assemble":
        assemble(*args)
    elif cmd == "commit":
        commit(*args)
    elif cmd == "refresh":
        refresh(*args)
    else:
        die(__doc__)


if __name__ == "__main__":
    main()
