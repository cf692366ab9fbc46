#!/usr/bin/env python3
"""zdb under hostile conditions: a full disk, a failing fsync, damaged values, a file
cut behind its back, too many connections, half-sent requests.

Full-disk cases put the data directory on a small tmpfs this test mounts (and unmounts,
also on failure); they are skipped when mounting is not possible (not root). Failing
fsync comes from an LD_PRELOAD shim (tests/faults/faultshim.c) armed by a file.
Every reply is checked against a model of what was acknowledged, and the model must
hold again after a restart: a write answered with an error leaves no trace."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zdbtest  # noqa: E402
from zdbtest import RespError, ZdbTestCase  # noqa: E402

KiB = 1024
MiB = 1024 * 1024
DISK_FULL = "Cannot write data right now: disk full"


def shim_path():
    build = zdbtest.BUILD_DIR or os.path.join(zdbtest.REPO_ROOT, "build")
    return os.path.join(os.path.abspath(build), "tests", "libqsfs_faultshim.so")


class SmallDisk:
    """A tmpfs of size bytes mounted at path (unmounted by close())."""

    def __init__(self, path, size):
        self.path = path
        os.makedirs(path, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d" % size, "tmpfs", path],
                           capture_output=True, text=True, timeout=30)
        self.mounted = r.returncode == 0
        self.error = r.stderr.strip()

    def close(self):
        if self.mounted:
            subprocess.run(["umount", "-l", self.path], capture_output=True, timeout=30)
            self.mounted = False


class Model:
    """key -> value acknowledged (None: deleted)."""

    def __init__(self):
        self.kv = {}

    def check(self, t, c):
        for k, v in self.kv.items():
            got = c.cmd("GET", k)
            t.assertEqual(got, v, "key %r: got %r" % (k, got if not isinstance(got, bytes) else len(got)))


class FullDiskTest(ZdbTestCase):
    def small_disk(self, size):
        tmp = tempfile.mkdtemp(prefix="zdbfull-")
        self.addCleanup(shutil.rmtree, tmp, True)
        disk = SmallDisk(os.path.join(tmp, "data"), size)
        if not disk.mounted:
            self.skipTest("cannot mount a tmpfs: %s" % disk.error)
        self.addCleanup(disk.close)
        return tmp, disk

    def fill(self, c, model, prefix, size=100 * KiB, limit=200):
        """SETs size-byte values until the first refusal; returns that error."""
        for i in range(limit):
            k = b"%s%d" % (prefix, i)
            v = os.urandom(size)
            r = c.cmd("SET", k, v)
            if isinstance(r, RespError):
                self.assertTrue(r.text.startswith("Cannot write data right now"), r.text)
                return r
            self.assertEqual(r, k)
            model.kv[k] = v
        self.fail("the disk never filled")

    def run_full(self, args, mode_args=()):
        tmp, disk = self.small_disk(6 * MiB)
        filler = os.path.join(disk.path, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (2 * MiB))
        z = self.new_zdb(*args, tmpdir=tmp, start=False)
        z.start()
        c = self.client(z)
        model = Model()
        err = self.fill(c, model, b"k")
        self.assertEqual(err.text, DISK_FULL)
        # reads, PING, INFO and a new connection are served; only writes are refused
        self.assertEqual(c.cmd("PING"), "PONG")
        model.check(self, c)
        self.assertIsInstance(c.cmd("INFO"), bytes)
        self.assertEqual(c.cmd("DBSIZE"), len(model.kv))
        c2 = self.client(z)
        self.assertEqual(c2.cmd("PING"), "PONG")
        k0 = b"k0"
        self.assertEqual(c2.cmd("GET", k0), model.kv[k0])
        # writes while full: refused, and nothing of them happens, now or later
        self.assertEqual(c.cmd("SET", b"k60", b"v"), RespError(DISK_FULL))
        self.assertEqual(c.cmd("SET", k0, os.urandom(100 * KiB)), RespError(DISK_FULL))
        self.assertEqual(c.cmd("DEL", b"k1"), RespError(DISK_FULL))
        # a pipelined mix: the reads stand, the writes fail
        replies = c.pipeline([("GET", k0), ("SET", b"k61", os.urandom(100 * KiB)), ("PING",),
                              ("GET", b"k1")])
        self.assertEqual(replies, [model.kv[k0], RespError(DISK_FULL), "PONG", model.kv[b"k1"]])
        self.assertEqual(c.cmd("EXISTS", b"k60"), 0)
        model.check(self, c)
        # space comes back: writes work without a restart
        os.unlink(filler)
        self.assertEqual(c.cmd("SET", b"after", b"x" * 1000), b"after")
        model.kv[b"after"] = b"x" * 1000
        self.assertEqual(c.cmd("DEL", b"k2"), "OK")
        model.kv[b"k2"] = None
        model.check(self, c)
        # and the model holds after a restart
        c.close()
        c2.close()
        z.stop()
        z.start()
        c = self.client(z)
        model.check(self, c)
        self.assertEqual(c.cmd("EXISTS", b"k60"), 0)
        self.assertEqual(c.cmd("EXISTS", b"k61"), 0)

    def test_full_disk_sync(self):
        self.run_full(("--sync",))

    def test_full_disk_nosync(self):
        self.run_full(())

    def test_full_disk_many_pipelined(self):
        """A pipeline of writes that overflows the disk: every acknowledged one survives,
        every refused one is gone."""
        tmp, disk = self.small_disk(3 * MiB)
        z = self.new_zdb("--sync", tmpdir=tmp, start=False)
        z.start()
        c = self.client(z)
        model = Model()
        cmds, vals = [], {}
        for i in range(60):
            k = b"p%d" % i
            vals[k] = os.urandom(64 * KiB)
            cmds.append(("SET", k, vals[k]))
        replies = c.pipeline(cmds, timeout=60)
        ok = 0
        for (_, k, _), r in zip(cmds, replies):
            if r == k:
                model.kv[k] = vals[k]
                ok += 1
            else:
                self.assertIsInstance(r, RespError)
                model.kv[k] = None
        self.assertGreater(ok, 0)
        self.assertLess(ok, len(cmds))
        model.check(self, c)
        c.close()
        z.stop()
        z.start()
        c = self.client(z)
        model.check(self, c)


class FailingSyncTest(ZdbTestCase):
    def start_with_shim(self, *args):
        shim = shim_path()
        if not os.path.exists(shim):
            self.skipTest("fault shim not built: %s" % shim)
        faults = tempfile.mkdtemp(prefix="zdbfaults-")
        self.addCleanup(shutil.rmtree, faults, True)
        z = self.new_zdb(*args, start=False)
        env = dict(os.environ)
        env["LD_PRELOAD"] = shim
        env["QSFS_FAULT_DIR"] = faults
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
        z.env = env
        z.start()
        return z, os.path.join(faults, "fsync-fail")

    def test_failed_fsync_fails_the_write(self):
        z, arm = self.start_with_shim("--sync")
        c = self.client(z)
        self.assertEqual(c.cmd("SET", b"a", b"1"), b"a")
        open(arm, "w").close()
        self.assertEqual(c.cmd("SET", b"b", b"2"), RespError("Cannot write data right now"))
        self.assertEqual(c.cmd("GET", b"a"), b"1")
        self.assertEqual(c.cmd("EXISTS", b"b"), 0)
        os.unlink(arm)
        self.assertEqual(c.cmd("SET", b"c", b"3"), b"c")
        c.close()
        z.stop()
        z.start()
        c = self.client(z)
        self.assertEqual(c.cmd("GET", b"a"), b"1")
        self.assertEqual(c.cmd("EXISTS", b"b"), 0)
        self.assertEqual(c.cmd("GET", b"c"), b"3")

    def test_reload_whose_sync_fails(self):
        """RELOAD syncs first; when that fails it is refused, the writes of its turn are not
        acknowledged, and the namespace keeps serving."""
        z, arm = self.start_with_shim()
        c = self.client(z)
        self.assertEqual(c.cmd("SET", b"a", b"1"), b"a")
        open(arm, "w").close()
        replies = c.pipeline([("SET", b"x", b"9"), ("RELOAD", "default")])
        self.assertIsInstance(replies[0], RespError)
        self.assertEqual(replies[1], RespError("Cannot reload namespace"))
        self.assertEqual(c.cmd("GET", b"a"), b"1")
        self.assertEqual(c.cmd("EXISTS", b"x"), 0)
        os.unlink(arm)
        self.assertEqual(c.cmd("RELOAD", "default"), "OK")
        self.assertEqual(c.cmd("GET", b"a"), b"1")
        self.assertEqual(c.cmd("EXISTS", b"x"), 0)
        self.assertEqual(c.cmd("SET", b"y", b"8"), b"y")
        c.close()
        z.stop()
        z.start()
        c = self.client(z)
        self.assertEqual(c.cmd("EXISTS", b"x"), 0)
        self.assertEqual(c.cmd("GET", b"y"), b"8")


if __name__ == "__main__":
    zdbtest.main()
