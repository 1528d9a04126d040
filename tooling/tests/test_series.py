#!/usr/bin/env python3
"""Unit tests of tooling/series.py on a tiny fake base and series, in a
temporary directory (no cache, no kernel): the round trip commits ->
refresh -> patches/ -> edit/commit/assemble gives the same trees, files and
modes back; edit, refresh and export refuse to destroy work; check finds a
repository edit the later patches cannot take back.

The fake series:
  0001  adds drivers/vfio/new.c, edits MAINTAINERS (a base file)
  0002  edits drivers/vfio/new.c and drivers/vfio/Makefile, adds the
        executable drivers/vfio/run.sh
"""
import contextlib
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tempfile
import types
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SERIES_PY = os.path.join(os.path.dirname(HERE), "series.py")

IDENT = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
         "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
         "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}

NEW_C_1 = "".join(f"int f{i}(void) {{ return {i}; }}\n" for i in range(12))
NEW_C_2 = NEW_C_1.replace("return 6;", "return 66;")

SERIES_HEADER = "# The series (fake, for tooling/tests/test_series.py).\n"
COVER = "fake: a test series\n\nBased on @BASE@.\n"


def sh(cwd, *args, env=None, check=True):
    r = subprocess.run(args, cwd=cwd, capture_output=True, text=True,
                       env={**os.environ, **IDENT, **(env or {})})
    if check and r.returncode:
        raise AssertionError(f"{args} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def read(path):
    with open(path) as f:
        return f.read()


class Series(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        """The fixture, once: base, gitbase (branch 'hand': the series
        committed by hand on tag 'base'), repository (refreshed from 'hand');
        each test works on its own copy."""
        cls.tpl = tempfile.TemporaryDirectory(prefix="test_series.")
        t = cls.tpl.name
        base, gitbase, repo, hand = (os.path.join(t, d) for d in ("base", "git", "repo",
                                                                  "hand"))
        write(f"{base}/MAINTAINERS", "VFIO DRIVER\nM:\tsomeone\nF:\tdrivers/vfio/\n")
        write(f"{base}/drivers/vfio/Makefile", "obj-y += vfio.o\n")
        write(f"{base}/drivers/vfio/vfio.c", "int vfio;\n")
        shutil.copytree(base, gitbase)
        sh(gitbase, "git", "init", "-q", "-b", "pristine")
        sh(gitbase, "git", "add", "-A")
        sh(gitbase, "git", "commit", "-q", "-m", "Linux 9.9 (Debian fake 9.9-1)")
        sh(gitbase, "git", "tag", "base")
        sh(gitbase, "git", "worktree", "add", "-q", "-b", "hand", hand, "base")
        write(f"{hand}/drivers/vfio/new.c", NEW_C_1)
        with open(f"{hand}/MAINTAINERS", "a") as f:
            f.write("F:\tdrivers/vfio/new.c\n")
        sh(hand, "git", "add", "-A")
        sh(hand, "git", "commit", "-q", "-m", "vfio: add new.c\n\nThe first patch.")
        write(f"{hand}/drivers/vfio/new.c", NEW_C_2)
        write(f"{hand}/drivers/vfio/run.sh", "#!/bin/sh\necho run\n", 0o755)
        with open(f"{hand}/drivers/vfio/Makefile", "a") as f:
            f.write("obj-y += new.o\n")
        sh(hand, "git", "add", "-A")
        sh(hand, "git", "commit", "-q", "-m", "vfio: build new.c, add run.sh\n\nThe second.")
        # the repository: the tool, an empty series, then refresh from hand
        os.makedirs(f"{repo}/tooling")
        shutil.copy(SERIES_PY, f"{repo}/tooling/series.py")
        write(f"{repo}/patches/series", SERIES_HEADER)
        write(f"{repo}/patches/cover-letter", COVER)
        sh(repo, "git", "init", "-q", "-b", "main")
        sh(repo, "git", "add", "-A")
        sh(repo, "git", "commit", "-q", "-m", "the tool")
        cls.first_refresh = sh(repo, sys.executable, "tooling/series.py", "refresh", hand)
        sh(repo, "git", "add", "-A")
        sh(repo, "git", "commit", "-q", "-m", "the fake series")
        cls.hand_trees = sh(hand, "git", "log", "--reverse", "--format=%T",
                            "base..HEAD").stdout.split()
        sh(gitbase, "git", "worktree", "remove", "--force", hand)

    @classmethod
    def tearDownClass(cls):
        cls.tpl.cleanup()

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="test_series.")
        self.addCleanup(self.tmp.cleanup)
        t = self.tmp.name
        for d in ("base", "git", "repo"):
            shutil.copytree(os.path.join(self.tpl.name, d), os.path.join(t, d),
                            symlinks=True)
        self.base, self.gitbase, self.repo = (os.path.join(t, d)
                                              for d in ("base", "git", "repo"))
        self.edit_tree = os.path.join(t, "edit")

    def hand_file(self, path):
        return sh(self.gitbase, "git", "show", f"hand:{path}").stdout

    # helpers

    def series(self, *args, ok=True, env=None):
        """Run the copy's series.py main() in this process (a python3 start
        per call would cost most of the test's time); its result as
        .returncode, .stdout, .stderr."""
        spec = importlib.util.spec_from_file_location(
            "series_copy", os.path.join(self.repo, "tooling", "series.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        out, err = io.StringIO(), io.StringIO()
        saved = dict(os.environ)
        os.environ.update({**IDENT, **(env or {})})
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    rc = mod.main(list(args))
                except SystemExit as e:
                    rc = e.code if isinstance(e.code, int) else 1
        finally:
            os.environ.clear()
            os.environ.update(saved)
        r = types.SimpleNamespace(returncode=rc, stdout=out.getvalue(),
                                  stderr=err.getvalue())
        if ok and r.returncode:
            self.fail(f"series.py {' '.join(args)} failed:\n{r.stdout}{r.stderr}")
        if not ok:
            self.assertNotEqual(r.returncode, 0, f"series.py {' '.join(args)} did not "
                                f"refuse:\n{r.stdout}{r.stderr}")
        return r

    def where(self):
        return ("--base", self.base, "--gitbase", self.gitbase)

    def commit_repo(self, msg):
        sh(self.repo, "git", "add", "-A")
        sh(self.repo, "git", "commit", "-q", "--allow-empty", "-m", msg)

    def repo_status(self):
        return sh(self.repo, "git", "status", "--porcelain").stdout

    def repo_snapshot(self):
        out = {}
        for d, _, files in os.walk(self.repo):
            if "/.git" in d + "/" or d.endswith("/.git"):
                continue
            for f in files:
                p = os.path.join(d, f)
                out[os.path.relpath(p, self.repo)] = (read(p), os.stat(p).st_mode & 0o777)
        return out

    def trees(self, tree):
        """Tree hashes of the commits base..HEAD of @tree."""
        return sh(tree, "git", "log", "--reverse", "--format=%T", "base..HEAD").stdout.split()

    def make_edit(self, *extra, ok=True, env=None):
        return self.series("edit", *self.where(), *extra, self.edit_tree, ok=ok, env=env)

    # the round trip

    def test_manifest(self):
        self.assertIn("added drivers/vfio/run.sh", self.first_refresh.stdout)
        self.assertEqual(read(f"{self.repo}/patches/series"), SERIES_HEADER +
                         "\n0001-vfio-add-new-c.patch  vfio: add new.c\n"
                         "\t+ drivers/vfio/new.c\n"
                         "\n0002-vfio-build-new-c-add-run-sh.patch  vfio: build new.c, "
                         "add run.sh\n\t+ drivers/vfio/run.sh\n")
        self.assertEqual(read(f"{self.repo}/drivers/vfio/new.c"), NEW_C_2)
        self.assertEqual(os.stat(f"{self.repo}/drivers/vfio/run.sh").st_mode & 0o777, 0o755)
        p2 = read(f"{self.repo}/patches/0002-vfio-build-new-c-add-run-sh.patch")
        self.assertTrue(p2.startswith("Subject: vfio: build new.c, add run.sh\n\n"
                                      "The second.\n---\n"))
        self.assertIn("+++ b/drivers/vfio/new.c", p2)
        self.assertNotIn("b/drivers/vfio/run.sh", p2)
        self.series("check", self.base)

    def test_edit_refresh_round_trip(self):
        before = self.repo_snapshot()
        r = self.make_edit()
        self.assertIn("branch 'series'", r.stdout)
        self.assertEqual(self.trees(self.edit_tree), self.hand_trees)
        self.assertEqual(sh(self.edit_tree, "git", "rev-parse", "--abbrev-ref",
                            "HEAD").stdout.strip(), "series")
        r = self.series("refresh", self.edit_tree)
        self.assertIn("nothing to change", r.stdout)
        self.assertEqual(self.repo_status(), "")
        self.assertEqual(self.repo_snapshot(), before)
        # from nothing: the patches and new files deleted (and committed),
        # refresh writes them back as they were
        for f in ("patches/0001-vfio-add-new-c.patch",
                  "patches/0002-vfio-build-new-c-add-run-sh.patch",
                  "drivers/vfio/new.c", "drivers/vfio/run.sh"):
            os.unlink(os.path.join(self.repo, f))
        write(f"{self.repo}/patches/series", SERIES_HEADER)
        self.commit_repo("nothing")
        self.series("refresh", self.edit_tree)
        self.assertEqual(self.repo_snapshot(), before)
        # edit again: nothing unrefreshed, so it resets without FORCE
        self.make_edit()
        self.assertEqual(self.trees(self.edit_tree), self.hand_trees)

    def test_edit_leaves_another_trees_branch(self):
        self.make_edit()
        e = self.edit_tree
        sh(e, "git", "commit", "-q", "--amend", "-m", "vfio: mine\n\nUnrefreshed.")
        mine = sh(e, "git", "rev-parse", "HEAD").stdout
        other = os.path.join(self.tmp.name, "other-edit")
        r = self.series("edit", *self.where(), other)
        self.assertIn("detached HEAD", r.stdout)
        self.assertEqual(sh(self.gitbase, "git", "rev-parse", "series").stdout, mine)
        self.assertEqual(sh(e, "git", "rev-parse", "HEAD").stdout, mine)

    def test_commit_is_reproducible(self):
        other = os.path.join(self.tmp.name, "other")
        sh(self.gitbase, "git", "worktree", "add", "-q", "--detach", other, "base")
        self.series("commit", self.base, other)
        self.make_edit()
        self.assertEqual(sh(other, "git", "rev-parse", "HEAD").stdout,
                         sh(self.edit_tree, "git", "rev-parse", "HEAD").stdout)

    def test_assemble(self):
        tree = os.path.join(self.tmp.name, "tree")
        shutil.copytree(self.base, tree)
        r = self.series("assemble", self.base, tree)
        self.assertIn("updated drivers/vfio/new.c", r.stdout)
        for f in ("MAINTAINERS", "drivers/vfio/Makefile", "drivers/vfio/new.c",
                  "drivers/vfio/run.sh", "drivers/vfio/vfio.c"):
            self.assertEqual(read(f"{tree}/{f}"), self.hand_file(f), f)
        r = self.series("assemble", self.base, tree)
        self.assertNotIn("updated", r.stdout)       # touches only what changes
        # patch 1 alone: new.c as patch 1 adds it, MAINTAINERS left as it is
        self.series("assemble", self.base, tree, "0001", ok=False)  # 0002 edits new.c

    def test_refresh_writes_changes_and_keeps_modes(self):
        self.make_edit()
        e = self.edit_tree
        write(f"{e}/drivers/vfio/run.sh", "#!/bin/sh\necho run again\n", 0o755)
        sh(e, "git", "commit", "-q", "-a", "--amend", "--no-edit")
        r = self.series("refresh", e)
        self.assertIn("changed drivers/vfio/run.sh", r.stdout)
        self.assertNotIn("patches/", r.stdout)
        self.assertEqual(read(f"{self.repo}/drivers/vfio/run.sh"), "#!/bin/sh\necho run again\n")
        self.assertEqual(os.stat(f"{self.repo}/drivers/vfio/run.sh").st_mode & 0o777, 0o755)
        # a mode lost in the repository comes back
        self.commit_repo("run.sh")
        os.chmod(f"{self.repo}/drivers/vfio/run.sh", 0o644)
        self.commit_repo("run.sh loses its exec bit")
        r = self.series("refresh", e)
        self.assertIn("changed drivers/vfio/run.sh", r.stdout)
        self.assertEqual(os.stat(f"{self.repo}/drivers/vfio/run.sh").st_mode & 0o777, 0o755)

    def test_refresh_renames_patches(self):
        self.make_edit()
        sh(self.edit_tree, "git", "commit", "-q", "--amend", "-m", "vfio: renamed\n\nBody.")
        r = self.series("refresh", self.edit_tree)
        self.assertIn("removed patches/0002-vfio-build-new-c-add-run-sh.patch", r.stdout)
        self.assertIn("added patches/0002-vfio-renamed.patch", r.stdout)
        self.assertIn("0002-vfio-renamed.patch  vfio: renamed\n",
                      read(f"{self.repo}/patches/series"))
        self.series("check", self.base)

    # the guards

    def test_refresh_refuses_to_overwrite_uncommitted_edits(self):
        self.make_edit()
        e = self.edit_tree
        write(f"{e}/drivers/vfio/run.sh", "#!/bin/sh\necho edit tree\n", 0o755)
        sh(e, "git", "commit", "-q", "-a", "--amend", "--no-edit")
        write(f"{self.repo}/drivers/vfio/run.sh", "#!/bin/sh\necho mine\n", 0o755)
        r = self.series("refresh", e, ok=False)
        self.assertIn("overwrite uncommitted changes", r.stderr)
        self.assertIn("drivers/vfio/run.sh", r.stderr)
        self.assertIn("FORCE=1", r.stderr)
        self.assertEqual(read(f"{self.repo}/drivers/vfio/run.sh"), "#!/bin/sh\necho mine\n")
        self.series("refresh", e, env={"FORCE": "1"})
        self.assertEqual(read(f"{self.repo}/drivers/vfio/run.sh"), "#!/bin/sh\necho edit tree\n")

    def test_refresh_proceeds_over_edits_it_keeps(self):
        self.make_edit()
        e = self.edit_tree
        write(f"{e}/drivers/vfio/run.sh", "#!/bin/sh\necho both\n", 0o755)
        sh(e, "git", "commit", "-q", "-a", "--amend", "--no-edit")
        # the same edit in the repository, uncommitted, and one refresh
        # does not write: nothing to lose
        write(f"{self.repo}/drivers/vfio/run.sh", "#!/bin/sh\necho both\n", 0o755)
        write(f"{self.repo}/patches/cover-letter", COVER + "More.\n")
        r = self.series("refresh", e)
        self.assertIn("nothing to change", r.stdout)
        self.assertIn("More.", read(f"{self.repo}/patches/cover-letter"))

    def test_refresh_refuses_uncommitted_edit_tree(self):
        self.make_edit()
        write(f"{self.edit_tree}/drivers/vfio/vfio.c", "int vfio2;\n")
        r = self.series("refresh", self.edit_tree, ok=False)
        self.assertIn("uncommitted changes", r.stderr)

    def test_edit_refuses_unrefreshed_commits(self):
        self.make_edit()
        e = self.edit_tree
        with open(f"{e}/drivers/vfio/vfio.c", "a") as f:
            f.write("int more;\n")
        sh(e, "git", "commit", "-q", "-a", "-m", "vfio: more\n\nA third patch.")
        r = self.make_edit(ok=False)
        self.assertIn("make refresh", r.stderr)
        self.assertIn("patches/0003-vfio-more.patch", r.stderr)
        self.assertIn("FORCE=1", r.stderr)
        self.assertEqual(len(self.trees(e)), 3)        # still there
        # uncommitted work too
        write(f"{e}/drivers/vfio/vfio.c", "int changed;\n")
        r = self.make_edit(ok=False)
        self.assertIn("uncommitted changes", r.stderr)
        sh(e, "git", "checkout", "-q", "--", "drivers/vfio/vfio.c")
        # FORCE=1 (or --force) drops it
        self.make_edit(env={"FORCE": "1"})
        self.assertEqual(self.trees(e), self.hand_trees)

    def test_edit_after_a_repository_edit(self):
        # a file no later patch edits may be edited in the repository; the
        # edit tree holds nothing of its own then, so edit resets it
        self.make_edit()
        write(f"{self.repo}/drivers/vfio/run.sh", "#!/bin/sh\necho new\n", 0o755)
        self.make_edit()
        self.assertEqual(read(f"{self.edit_tree}/drivers/vfio/run.sh"),
                         "#!/bin/sh\necho new\n")
        # and a newer series committed in the repository: the same
        self.commit_repo("run.sh says new")
        write(f"{self.repo}/drivers/vfio/run.sh", "#!/bin/sh\necho newer\n", 0o755)
        self.commit_repo("run.sh says newer")
        self.make_edit()
        self.assertEqual(read(f"{self.edit_tree}/drivers/vfio/run.sh"),
                         "#!/bin/sh\necho newer\n")

    def test_edit_keeps_work_refresh_wrote(self):
        self.make_edit()
        e = self.edit_tree
        with open(f"{e}/drivers/vfio/vfio.c", "a") as f:
            f.write("int more;\n")
        sh(e, "git", "commit", "-q", "-a", "-m", "vfio: more\n\nA third patch.")
        self.series("refresh", e)
        self.make_edit()            # refreshed: nothing lost, no refusal
        self.assertEqual(len(self.trees(e)), 3)

    def test_export(self):
        out = os.path.join(self.tmp.name, "out")
        r = self.series("export", *self.where(), out)
        names = sorted(os.listdir(out))
        self.assertEqual(names, [".vfio-mig-export", "0000-cover-letter.patch",
                                 "0001-vfio-add-new.c.patch",
                                 "0002-vfio-build-new.c-add-run.sh.patch"])
        self.assertIn("0001-vfio-add-new.c.patch", r.stdout)
        cover = read(f"{out}/0000-cover-letter.patch")
        self.assertIn("Subject: [PATCH 0/2] fake: a test series", cover)
        self.assertIn("Based on Linux 9.9 (Debian fake 9.9-1).", cover)
        self.assertNotIn("***", cover)
        self.assertIn("From: VFIO migration series <vfio-migration@example.org>\n"
                      "Date: Thu, 1 Jan 2026 00:00:00 +0000\n", cover)
        # the patches apply to the base with git am
        am = os.path.join(self.tmp.name, "am")
        sh(self.gitbase, "git", "worktree", "add", "-q", "--detach", am, "base")
        sh(am, "git", "am", "-q", *(f"{out}/{n}" for n in names[2:]))
        self.assertEqual(self.trees(am), self.hand_trees)
        # again into the same directory: an earlier export is replaced
        with open(f"{out}/0003-stale.patch", "w") as f:
            f.write("old\n")
        self.series("export", *self.where(), out)
        self.assertEqual(sorted(os.listdir(out)), names)

    def test_export_refuses_foreign_directory(self):
        out = os.path.join(self.tmp.name, "mine")
        write(f"{out}/notes.txt", "keep me\n")
        r = self.series("export", *self.where(), out, ok=False)
        self.assertIn("not an earlier export", r.stderr)
        self.assertIn("notes.txt", r.stderr)
        self.assertEqual(os.listdir(out), ["notes.txt"])
        # patch-like files without our marker: refused too
        os.unlink(f"{out}/notes.txt")
        write(f"{out}/0001-theirs.patch", "theirs\n")
        r = self.series("export", *self.where(), out, ok=False)
        self.assertIn("no .vfio-mig-export marker", r.stderr)
        self.assertEqual(os.listdir(out), ["0001-theirs.patch"])
        # an earlier export with a foreign file added: refused
        os.unlink(f"{out}/0001-theirs.patch")
        self.series("export", *self.where(), out)
        write(f"{out}/sub/x", "x\n")
        r = self.series("export", *self.where(), out, ok=False)
        self.assertIn("sub", r.stderr)
        self.assertTrue(os.path.exists(f"{out}/sub/x"))
        # an empty directory is fine
        empty = os.path.join(self.tmp.name, "empty")
        os.mkdir(empty)
        self.series("export", *self.where(), empty)

    # check

    def test_check_detects_edit_a_later_patch_cannot_take_back(self):
        new_c = f"{self.repo}/drivers/vfio/new.c"
        # a line patch 2 does not diff or need: fine, it goes into patch 1
        write(new_c, NEW_C_2.replace("return 0;", "return 100;"))
        self.series("check", self.base)
        self.make_edit()
        self.assertIn("return 100;", sh(self.edit_tree, "git", "show",
                                        "HEAD~1:drivers/vfio/new.c").stdout)
        # the line patch 2 changes: patch 2 no longer takes back
        write(new_c, NEW_C_2.replace("return 66;", "return 67;"))
        r = self.series("check", self.base, ok=False)
        self.assertIn("drivers/vfio/new.c", r.stderr)
        self.assertIn("0002-vfio-build-new-c-add-run-sh.patch edits it after "
                      "0001-vfio-add-new-c.patch adds it", r.stderr)
        self.assertIn("make edit", r.stderr)
        self.assertIn("make refresh", r.stderr)

    def test_check_manifest(self):
        write(f"{self.repo}/drivers/vfio/stray.c", "int stray;\n")
        r = self.series("check", ok=False)
        self.assertIn("stray.c", r.stderr)
        os.unlink(f"{self.repo}/drivers/vfio/stray.c")
        write(f"{self.base}/drivers/vfio/run.sh", "x\n")
        r = self.series("check", self.base, ok=False)
        self.assertIn("exists in the base", r.stderr)


if __name__ == "__main__":
    unittest.main()
