#!/usr/bin/env python3
"""pjdfstest (../shared/tools/pjdfstest, or QSFS_PJDFSTEST) run as root on a zdbfs mount.

The suite is copied into the build directory and built once (autoreconf, configure,
make pjdfstest); prove runs every test file; any failed test fails this test, and the
counts are printed (docs/zdbfs.md records them). Skipped without root, /dev/fuse or the
pjdfstest source."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zdbtest  # noqa: E402
import zdbfstest  # noqa: E402

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pjdfstest_source():
    for p in (os.environ.get("QSFS_PJDFSTEST"),
              os.path.join(SOURCE_DIR, "..", "shared", "tools", "pjdfstest"),
              "/work/shared/tools/pjdfstest"):
        if p and os.path.exists(os.path.join(p, "pjdfstest.c")):
            return os.path.realpath(p)
    return None


def build_pjdfstest(src):
    dst = os.path.join(zdbtest.BUILD_DIR, "pjdfstest")
    exe = os.path.join(dst, "pjdfstest")
    if os.path.exists(exe):
        return dst
    tmp = dst + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    for argv in (["autoreconf", "-ifs"], ["./configure"], ["make", "pjdfstest"]):
        subprocess.run(argv, cwd=tmp, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=600)
    shutil.rmtree(dst, ignore_errors=True)
    os.rename(tmp, dst)
    return dst


class TestPosix(zdbtest.ZdbTestCase):
    def test_pjdfstest(self):
        if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
            self.skipTest("needs root and /dev/fuse")
        src = pjdfstest_source()
        if not src:
            self.skipTest("pjdfstest source not found (set QSFS_PJDFSTEST)")
        suite = build_pjdfstest(src)
        tmp = tempfile.mkdtemp(prefix="zdbfs-posix-")
        self.addCleanup(shutil.rmtree, tmp, True)
        z = self.new_zdb(tmpdir=os.path.join(tmp, "zdb"))
        m = zdbfstest.Mount(z, tmp, ["autons", "allow_other"])
        self.addCleanup(m.cleanup)
        m.start()
        work = os.path.join(m.path, "pjd")
        os.mkdir(work)
        r = subprocess.run(["prove", "-r", os.path.join(suite, "tests")], cwd=work,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1500)
        out = r.stdout.decode("utf-8", "replace")
        counts = re.search(r"Files=(\d+), Tests=(\d+)", out)
        print("pjdfstest: %s, result %s" % (counts.group(0) if counts else "no counts",
                                           "PASS" if r.returncode == 0 else "FAIL"))
        bad = [l for l in out.splitlines() if " ok" not in l and ("Failed" in l or "not ok" in l)]
        self.assertEqual(r.returncode, 0, "\n".join(bad[-60:]) or out[-4000:])
        self.assertIn("All tests successful", out)
        self.assertEqual(m.stop(), 0)


if __name__ == "__main__":
    if not pjdfstest_source():
        # shown by ctest as skipped (not as passed)
        print("SKIP: pjdfstest source not found (../shared/tools/pjdfstest; set QSFS_PJDFSTEST)")
        sys.exit(77)
    zdbtest.main()
