#!/usr/bin/env python3
"""The patch series: the repository's form of it, the trees made from it, and
the way back.  The one tool for the series (make edit/refresh/export call it).

patches/series lists the series in order.  Each entry names a patch file
(commit message + edits to files that exist in the base) and the new files
the patch introduces; those live at their in-tree paths in this repository,
in their final form.  A later patch may edit a file an earlier one adds:
its diff of that file is in its patch file too, and the file as the earlier
patch added it is the final form with the later diffs taken back.

  series.py check [BASE]               manifest and repository agree, and every
                                       file a later patch edits still takes
                                       that patch's diff back
  series.py assemble BASE TREE [N...]  make TREE = BASE + series, touching
                                       only files whose content changes;
                                       with patch numbers N, only those
                                       patches, MAINTAINERS left as it is
                                       (its hunks rest on the others')
  series.py commit  BASE GITTREE       commit the series on GITTREE's HEAD,
                                       one commit per entry
  series.py edit [--force] [TREE]      make (or reset) the edit tree, default
                                       $CACHE/edit-<ver>: the base plus one
                                       commit per patch, branch 'series'.
                                       Refuses to drop uncommitted work or
                                       commits 'refresh' has not written back
  series.py refresh [--force] [TREE [BASEREV]]
                                       write TREE's commits BASEREV..HEAD
                                       (default: the edit tree, base) back
                                       into patches/ and the new files, with
                                       their modes; prints what it changed.
                                       Refuses to overwrite uncommitted
                                       changes of this repository
  series.py export [OUT]               git format-patch --cover-letter of the
                                       series into OUT (default $CACHE/out),
                                       the cover letter filled from
                                       patches/cover-letter.  OUT must be new,
                                       empty or an earlier export

--force (or FORCE=1 in the environment) overrides the refusals of edit and
refresh.  edit and export take the base from the cache (tooling/lib.sh);
--base DIR --gitbase DIR name them instead (a git repository whose tag
'base' holds the base; its subject describes the base in the cover letter).
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
LOCK = None        # the cache lock, held until exit (lock_cache)


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
    staged(entries)     # each added file takes the later diffs back


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


def put(path, data, mode=None):
    """Replace path with data (and mode, when given), unless it already holds
    exactly that."""
    try:
        with open(path, "rb") as f:
            if f.read() == data and (mode is None or
                                     os.stat(path).st_mode & 0o777 == mode):
                return False
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".vfio-mig-tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    if mode is not None:
        os.chmod(tmp, mode)
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


def git_out(tree, *args):
    return git(tree, *args, capture_output=True).stdout


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
                        die(f"{a}: patches/{later.patch} edits it after "
                            f"{e.patch} adds it, and its diff no longer takes back "
                            f"from the repository's {a}, so the file as {e.patch} "
                            f"adds it cannot be rebuilt (make edit, make export and "
                            f"the bisect build would fail):\n{err}"
                            f"A change to lines a later patch edits belongs in the "
                            f"edit tree: undo it here (git diff {a}), then 'make "
                            f"edit', commit it there with git commit --fixup=<the "
                            f"patch's commit>, rebase --autosquash base, and "
                            f"'make refresh'")
                with open(dst, "rb") as f:
                    out[(i, a)] = f.read()
    return out


# Reproducible commits: same series, same hashes.
IDENT = {"GIT_AUTHOR_NAME": "VFIO migration series",
         "GIT_AUTHOR_EMAIL": "vfio-migration@example.org",
         "GIT_COMMITTER_NAME": "VFIO migration series",
         "GIT_COMMITTER_EMAIL": "vfio-migration@example.org",
         "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
         "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}


def commit(base, tree):
    entries = parse()
    check(entries, base)
    first = staged(entries)
    env = {**os.environ, **IDENT}
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
        git(tree, "commit", "-q", "--allow-empty", "-F", "-", input=e.message(), env=env)


def slug(subject):
    s = re.sub(r"[^A-Za-z0-9]+", "-", subject).strip("-").lower()
    return s[:52].rstrip("-")


def from_tree(tree, baserev):
    """What refresh writes from @tree's commits @baserev..HEAD:
    ({repository path: (bytes, mode)}, [patches/*.patch paths it removes])."""
    revs = git_out(tree, "rev-list", "--reverse", f"{baserev}..HEAD").split()
    if not revs:
        die(f"{tree}: no commits on top of {baserev}")
    files, entries = {}, []
    for n, rev in enumerate(revs, 1):
        msg = git_out(tree, "log", "-1", "--format=%B", rev)
        subject, _, body = msg.partition("\n")
        status = git_out(tree, "diff-tree", "--no-commit-id", "-r", "--no-renames",
                         "--name-status", rev).split("\n")
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
            diff = git_out(tree, "diff", "--no-renames", f"{rev}^", rev, "--", *edits)
        e = Entry(f"{n:04d}-{slug(subject)}.patch", subject)
        e.adds = adds
        text = f"Subject: {subject}\n\n{body.strip()}\n" + (f"---\n{diff}" if diff else "")
        files[f"patches/{e.patch}"] = (text.encode(), 0o644)
        entries.append(e)
        for a in adds:
            data = subprocess.run(["git", "-C", tree, "show", f"HEAD:{a}"], check=True,
                                  capture_output=True).stdout
            mode = git_out(tree, "ls-tree", "HEAD", "--", a).split()[0]
            files[a] = (data, 0o755 if mode == "100755" else 0o644)
    with open(SERIES) as f:
        header = [l for l in f if l.startswith("#")]
    text = "".join(header)
    for e in entries:
        text += f"\n{e.patch}  {e.subject}\n" + "".join(f"\t+ {a}\n" for a in e.adds)
    files["patches/series"] = (text.encode(), os.stat(SERIES).st_mode & 0o777)
    gone = [f"patches/{p}" for p in sorted(os.listdir(PATCHES))
            if p.endswith(".patch") and f"patches/{p}" not in files]
    return files, gone


def differs(files, gone):
    """Paths of this repository that files/gone would change."""
    out = list(gone)
    for path, (data, mode) in files.items():
        full = os.path.join(TOP, path)
        try:
            with open(full, "rb") as f:
                if f.read() == data and os.stat(full).st_mode & 0o777 == mode:
                    continue
        except FileNotFoundError:
            pass
        out.append(path)
    return sorted(out)


def listing(paths, most=12):
    more = f" (and {len(paths) - most} more)" if len(paths) > most else ""
    return "".join(f"\n   {p}" for p in paths[:most]) + more


def forced(force):
    return force or os.environ.get("FORCE") == "1"


def refresh(tree, baserev="base", force=False):
    if git_out(tree, "status", "--porcelain"):
        die(f"{tree} has uncommitted changes: commit them (or discard them) first")
    files, gone = from_tree(tree, baserev)
    head = git_out(tree, "rev-parse", "HEAD").strip()
    change = differs(files, gone)
    if not change:
        made(tree, head)
        print("refresh: nothing to change (patches/ and the new files match "
              f"{tree})")
        return []
    dirty = {l[3:].split(" -> ")[-1] for l in git_out(
        TOP, "status", "--porcelain", "--untracked-files=all", "--", *change).splitlines()}
    lost = [p for p in change if p in dirty]
    if lost and not forced(force):
        die("refresh would overwrite uncommitted changes of this repository in:"
            f"{listing(lost)}\ncommit them first (or carry them into the edit tree "
            "and discard them here), or run FORCE=1 make refresh to overwrite them")
    for p in change:
        if p in gone:
            os.unlink(os.path.join(TOP, p))
            print(f"   removed {p}")
        else:
            data, mode = files[p]
            new = not os.path.exists(os.path.join(TOP, p))
            put(os.path.join(TOP, p), data, mode)
            print(f"   {'added' if new else 'changed'} {p}")
    made(tree, head)
    n = sum(1 for p in files if p.endswith(".patch"))
    print(f"refresh: {len(change)} files changed; the series has {n} patches")
    return change


# The cache: what tooling/lib.sh knows (paths, base version).
LIB_ENV = r'''
. "$1/tooling/lib.sh"
"$TOOLING/prepare" >&2
base_paths
ensure_gitbase >&2
printf '%s\n' "$CACHE" "$BASE_VER" "$BASE" "$GITBASE"
'''


def cache_paths():
    r = subprocess.run(["bash", "-c", LIB_ENV, "lib", TOP], stdout=subprocess.PIPE,
                       text=True)
    if r.returncode:
        sys.exit(r.returncode)
    cache, ver, base, gitbase = r.stdout.split("\n")[:4]
    return cache, ver, base, gitbase


def lock_cache(cache):
    """tooling/lib.sh's lock_cache: held until this process exits."""
    if os.environ.get("VFIO_MIG_LOCKED") == cache:
        return
    import fcntl
    os.makedirs(cache, exist_ok=True)
    global LOCK
    LOCK = open(os.path.join(cache, "lock"), "w")
    try:
        fcntl.flock(LOCK, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print(f">> waiting for another run to release {cache}/lock", file=sys.stderr)
        fcntl.flock(LOCK, fcntl.LOCK_EX)
    os.environ["VFIO_MIG_LOCKED"] = cache


def make_tree(gitbase, base, tree):
    """A worktree of the base at @tree with the series committed on it."""
    if not os.path.exists(os.path.join(tree, ".git")):
        shutil.rmtree(tree, ignore_errors=True)
        git(gitbase, "worktree", "prune")
        git(gitbase, "worktree", "add", "-q", "--detach", tree, "base")
    git(tree, "checkout", "-q", "--detach", "base")
    git(tree, "reset", "-q", "--hard", "base")
    git(tree, "clean", "-q", "-fdx")
    commit(base, tree)


def made(tree, head=None):
    """The commit @tree's series was made from or last refreshed from (kept
    in its git directory); with @head, record that one."""
    path = git_out(tree, "rev-parse", "--git-path", "vfio-mig-series").strip()
    path = os.path.join(tree, path)
    if head:
        with open(path, "w") as f:
            f.write(head + "\n")
        return head
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def branch_holders(gitbase, branch):
    """Worktrees of @gitbase that have @branch checked out."""
    out = []
    for block in git_out(gitbase, "worktree", "list", "--porcelain").split("\n\n"):
        lines = block.split("\n")
        if lines[0].startswith("worktree ") and f"branch refs/heads/{branch}" in lines:
            out.append(lines[0][len("worktree "):])
    return out


def edit(gitbase, base, tree, force=False, refresh_cmd="make refresh"):
    if os.path.exists(os.path.join(tree, ".git")) and not forced(force):
        keep = "keep that work with 'make refresh' (or drop it: FORCE=1 make edit)"
        for state in ("rebase-merge", "rebase-apply", "MERGE_HEAD", "CHERRY_PICK_HEAD"):
            path = git_out(tree, "rev-parse", "--git-path", state).strip()
            if os.path.exists(os.path.join(tree, path)):
                die(f"{tree}: {state} exists, an operation is in progress there: "
                    "finish or abort it, then " + keep)
        if git_out(tree, "status", "--porcelain"):
            die(f"{tree} has uncommitted changes: commit them and {keep}")
        head = git_out(tree, "rev-parse", "HEAD").strip()
        if head != made(tree) and git_out(tree, "rev-list", "-1", "base..HEAD").strip():
            files, gone = from_tree(tree, "base")
            change = differs(files, gone)
            if change:
                die(f"{tree} holds commits the repository's series does not have "
                    f"('make refresh' would change:{listing(change)})\n"
                    f"'make edit' would reset them away: {keep}")
    make_tree(gitbase, base, tree)
    made(tree, git_out(tree, "rev-parse", "HEAD").strip())
    # Branch 'series', unless another worktree of the base holds it: the
    # branch is shared by all of them, moving it would move theirs.
    elsewhere = [w for w in branch_holders(gitbase, "series")
                 if os.path.realpath(w) != os.path.realpath(tree)]
    if elsewhere:
        print(f"edit tree: {tree} (detached HEAD on tag 'base'; branch 'series' "
              f"is {elsewhere[0]}'s)")
    else:
        git(tree, "checkout", "-q", "-B", "series")
        print(f"edit tree: {tree} (branch 'series' on tag 'base')")
    print(f"commit there (git commit --fixup, git rebase -i base), then: {refresh_cmd}")


MARKER = ".vfio-mig-export"
EXPORTED = re.compile(r"\d{4}-.+\.patch$")


def export(gitbase, base, tree, out, ours=False):
    """@ours: @out is the cache's own directory (no marker needed)."""
    if os.path.exists(out) and not os.path.isdir(out):
        die(f"export: {out} is not a directory")
    names = os.listdir(out) if os.path.isdir(out) else []
    if names:
        foreign = sorted(n for n in names if n != MARKER and not EXPORTED.match(n))
        if foreign or not (ours or MARKER in names):
            why = (f"it holds other files: {' '.join(foreign[:8])}"
                   f"{' ...' if len(foreign) > 8 else ''}" if foreign else
                   f"it has no {MARKER} marker")
            die(f"export: {out} is not empty and not an earlier export of the "
                f"series ({why}); an export replaces its directory's NNNN-*.patch "
                "files: name a new or empty directory (make export OUT=dir)")
    make_tree(gitbase, base, tree)
    for n in names:
        os.unlink(os.path.join(out, n))
    os.makedirs(out, exist_ok=True)
    git(tree, "format-patch", "-q", "--cover-letter", "--base=base", "-o", out, "base..HEAD",
        env={**os.environ, **IDENT})       # the cover letter's From: and Date:
    cover(os.path.join(out, "0000-cover-letter.patch"),
          git_out(gitbase, "log", "-1", "--format=%s", "base").strip())
    with open(os.path.join(out, MARKER), "w") as f:
        f.write("written by tooling/series.py export; the next export replaces "
                "this directory's NNNN-*.patch files\n")
    for n in sorted(os.listdir(out)):
        if n != MARKER:
            print(os.path.join(out, n))


def cover(path, described):
    """Fill git format-patch's cover letter from patches/cover-letter: its first
    line is the subject, the rest the body; @BASE@ in it becomes @described
    (the base commit's subject, e.g. "Linux 6.12.118 (Debian linux-source-6.12
    6.12.118-1~deb12u1)")."""
    with open(os.path.join(PATCHES, "cover-letter")) as f:
        subject, _, body = f.read().partition("\n")
    body = body.strip().replace("@BASE@", described)
    with open(path) as f:
        text = f.read()
    for placeholder, value in (("*** SUBJECT HERE ***", subject.strip()),
                               ("*** BLURB HERE ***", body)):
        if placeholder not in text:
            die(f"{placeholder} not found in {path}")
        text = text.replace(placeholder, value)
    with open(path, "w") as f:
        f.write(text)


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="series.py", usage=__doc__.split("\n\n")[2],
                                 add_help=False)
    ap.add_argument("cmd", nargs="?")
    ap.add_argument("args", nargs="*")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--base")
    ap.add_argument("--gitbase")
    ap.add_argument("-h", "--help", action="store_true")
    o = ap.parse_intermixed_args(argv)
    cmd, args = o.cmd, o.args
    if o.help or cmd is None:
        print(__doc__)
        return 0 if o.help else 2
    want = {"check": (0, 1), "assemble": (2, 99), "commit": (2, 2), "edit": (0, 1),
            "refresh": (0, 2), "export": (0, 1)}
    if cmd not in want or not want[cmd][0] <= len(args) <= want[cmd][1]:
        die(f"usage: see {sys.argv[0]} --help")
    if cmd == "check":
        check(parse(), args[0] if args else None)
    elif cmd == "assemble":
        assemble(*args)
    elif cmd == "commit":
        commit(*args)
    elif cmd == "refresh":
        if args:
            refresh(args[0], *(args[1:] or ["base"]), force=o.force)
        else:
            cache, ver = cache_paths()[:2]
            tree = os.path.join(cache, f"edit-{ver}")
            if not os.path.exists(os.path.join(tree, ".git")):
                die("no edit tree: run 'make edit' first")
            refresh(tree, "base", force=o.force)
    else:
        if o.base and o.gitbase:
            cache, ver, base, gitbase = None, None, o.base, o.gitbase
        else:
            cache, ver, base, gitbase = cache_paths()
        if cmd == "edit":
            if args:
                tree = os.path.abspath(args[0])
                edit(gitbase, base, tree, force=o.force,
                     refresh_cmd=f"python3 {os.path.join(TOP, 'tooling', 'series.py')} "
                     f"refresh {tree}")
            else:
                edit(gitbase, base, os.path.join(cache, f"edit-{ver}"), force=o.force)
        else:
            if not (args or cache):
                die("export: with --base and --gitbase, name the output directory")
            if cache:
                lock_cache(cache)
            out = args[0] if args else os.path.join(cache, "out")
            tree = os.path.join(cache, f"export-{ver}") if cache else gitbase + "-export"
            export(gitbase, base, tree, os.path.abspath(out), ours=not args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
