#!/usr/bin/env python3
"""A random-operation exerciser: the same seeded operations on a zdbfs mount and on a
plain directory, compared after every step; remounts, kill -9 of zdbfs and of zdb at
random points.

    fsx_zdbfs.py --build BUILD [--seed N] [--ops N]      (replay a failure with its seed)

Operations: create/overwrite, write at an offset, append, truncate (shrink or grow),
punch a hole, rename (files and directories, over existing names), link, unlink, mkdir,
rmdir, symlink, chmod, fsync. After each, the result (success or errno) and the whole
tree (names, types, sizes, modes, link counts, contents) must be the same on both sides.
Now and then: unmount and remount (everything must be there), kill -9 of zdb and a
restart (zdbfs must carry on), or kill -9 of zdbfs: after the remount every file that
was fsynced and not touched since must hold exactly its fsynced bytes, the tree must be
consistent (everything listed can be read), and the reference is then reset to what
zdbfs kept. Exit status 0 on success; on a difference it prints the seed, the step and
the operation."""
import argparse
import errno
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zdbtest  # noqa: E402
import zdbfstest  # noqa: E402

PUNCH_HOLE, KEEP_SIZE = 0x02, 0x01


def snapshot(root):
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if os.path.islink(p):
                out[rel] = ("l", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("d", st.st_mode & 0o7777, st.st_nlink)
            else:
                with open(p, "rb") as f:
                    data = f.read()
                out[rel] = ("f", st.st_mode & 0o7777, st.st_nlink, st.st_size,
                            hashlib.sha256(data).hexdigest())
    return out


def fallocate(fd, mode, off, length):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    if libc.fallocate(fd, mode, off, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


class Exerciser:
    def __init__(self, seed, ops, work, blocksize=None, flushsize=None):
        self.blocksize = blocksize
        self.flushsize = flushsize
        self.rnd = random.Random(seed)
        self.seed = seed
        self.nops = ops
        self.work = work
        self.ref = os.path.join(work, "ref")
        os.makedirs(self.ref)
        self.zdb = zdbtest.Zdb(tmpdir=os.path.join(work, "zdb"))
        self.zdb.keep_port = True
        self.mount = None
        self.durable = {}  # relative path -> sha256 of what was fsynced (untouched since)
        self.counts = {}

    # -- mounts --------------------------------------------------------------
    def mount_fs(self):
        opts = ["autons", "commit=300"] + (["blocksize=%s" % self.blocksize] if self.blocksize else [])
        opts += ["flushsize=%s" % self.flushsize] if self.flushsize else []
        self.mount = zdbfstest.Mount(self.zdb, self.work, opts)
        self.mount.start()

    def paths(self, kind=None):
        snap = snapshot(self.ref)
        return [p for p, v in snap.items() if kind is None or v[0] == kind]

    def pick(self, kind=None, fresh_ok=True):
        existing = self.paths(kind)
        dirs = [""] + self.paths("d")
        if fresh_ok and (not existing or self.rnd.random() < 0.3):
            d = self.rnd.choice(dirs)
            return os.path.join(d, "n%d" % self.rnd.randrange(12))
        return self.rnd.choice(existing) if existing else "n0"

    # -- one operation on one side -----------------------------------------
    def apply(self, root, op):
        kind, a = op[0], op[1:]
        p = lambda rel: os.path.join(root, rel)  # noqa: E731
        try:
            if kind == "write":
                rel, off, data, trunc = a
                flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if trunc else 0)
                fd = os.open(p(rel), flags, 0o644)
                try:
                    os.pwrite(fd, data, off)
                finally:
                    os.close(fd)
            elif kind == "append":
                rel, data = a
                fd = os.open(p(rel), os.O_WRONLY | os.O_APPEND)
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
            elif kind == "truncate":
                os.truncate(p(a[0]), a[1])
            elif kind == "punch":
                rel, off, length = a
                fd = os.open(p(rel), os.O_WRONLY)
                try:
                    fallocate(fd, PUNCH_HOLE | KEEP_SIZE, off, length)
                finally:
                    os.close(fd)
            elif kind == "rename":
                os.rename(p(a[0]), p(a[1]))
            elif kind == "link":
                os.link(p(a[0]), p(a[1]))
            elif kind == "unlink":
                os.unlink(p(a[0]))
            elif kind == "mkdir":
                os.mkdir(p(a[0]), 0o755)
            elif kind == "rmdir":
                os.rmdir(p(a[0]))
            elif kind == "symlink":
                os.symlink(a[1], p(a[0]))
            elif kind == "chmod":
                os.chmod(p(a[0]), a[1])
            elif kind == "fsync":
                fd = os.open(p(a[0]), os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            return 0
        except OSError as e:
            return e.errno

    def random_op(self):
        r = self.rnd
        kind = r.choice(["write", "write", "write", "append", "truncate", "punch", "rename",
                         "rename", "link", "unlink", "mkdir", "mkdir", "rmdir", "symlink", "chmod",
                         "fsync", "fsync"])
        if kind == "write":
            size = r.choice([1, 100, 4096, 65536, 131072, 131073, 300000])
            return (kind, self.pick("f"), r.choice([0, 0, r.randrange(400000)]),
                    r.randbytes(size), r.random() < 0.2)
        if kind == "append":
            return (kind, self.pick("f", False), r.randbytes(r.choice([10, 5000, 140000])))
        if kind == "truncate":
            return (kind, self.pick("f", False), r.choice([0, 1, 4095, 131072, r.randrange(600000)]))
        if kind == "punch":
            return (kind, self.pick("f", False), r.randrange(300000), r.choice([100, 131072, 262144]))
        if kind in ("rename", "link"):
            return (kind, self.pick(None, False), self.pick(None))
        if kind == "unlink":
            return (kind, self.pick(None, False))
        if kind in ("mkdir",):
            return (kind, self.pick("d"))
        if kind == "rmdir":
            return (kind, self.pick("d", False))
        if kind == "symlink":
            return (kind, self.pick(None), r.choice(["n1", "../x", "a/b/c"]))
        if kind == "chmod":
            return (kind, self.pick("f", False), r.choice([0o600, 0o644, 0o755, 0o4755]))
        return ("fsync", self.pick("f", False))

    def describe(self, op):
        return "%s %s" % (op[0], " ".join(repr(x) if not isinstance(x, bytes) else "<%d bytes>" % len(x)
                                            for x in op[1:]))

    def touched(self, op):
        """Relative paths whose content or name an operation may change."""
        if op[0] in ("rename", "link"):
            return [op[1], op[2]]
        return [op[1]]

    # -- the run -------------------------------------------------------------
    def fail(self, step, op, why):
        print("FAIL seed=%d step=%d op=%s: %s" % (self.seed, step, self.describe(op) if op else "-", why))
        print(self.mount.log()[-3000:] if self.mount else "")
        return 1

    def run(self):
        self.zdb.start()
        self.mount_fs()
        for step in range(self.nops):
            dice = self.rnd.random()
            if dice < 0.01:
                if os.environ.get("FSX_TRACE"):
                    print("step %d: remount" % step)
                self.counts["remount"] = self.counts.get("remount", 0) + 1
                rc = self.mount.stop()
                if rc != 0:
                    return self.fail(step, None, "unmount status %s" % rc)
                self.mount_fs()
            elif dice < 0.015:
                if os.environ.get("FSX_TRACE"):
                    print("step %d: kill -9 zdb" % step)
                self.counts["kill -9 zdb"] = self.counts.get("kill -9 zdb", 0) + 1
                self.zdb.kill9()
                self.zdb.start()
            elif dice < 0.025:
                if os.environ.get("FSX_TRACE"):
                    print("step %d: kill -9 zdbfs" % step)
                self.counts["kill -9 zdbfs"] = self.counts.get("kill -9 zdbfs", 0) + 1
                self.mount.kill9()
                self.mount_fs()
                got = snapshot(self.mount.path)  # everything listed can be read
                for rel, digest in self.durable.items():
                    if rel not in got or got[rel][0] != "f" or got[rel][4] != digest:
                        return self.fail(step, None, "fsynced %s lost or changed after kill -9" % rel)
                shutil.rmtree(self.ref)
                os.makedirs(self.ref)
                # cp -a keeps hard links (shutil.copytree does not)
                subprocess.run(["cp", "-a", self.mount.path + "/.", self.ref], check=True, timeout=300)
                self.durable = {}
            op = self.random_op()
            if os.environ.get("FSX_TRACE"):
                print("step %d: %s" % (step, self.describe(op)))
            self.counts[op[0]] = self.counts.get(op[0], 0) + 1
            want = self.apply(self.ref, op)
            got = self.apply(self.mount.path, op)
            if want != got:
                return self.fail(step, op, "result %s on zdbfs, %s on the reference" %
                                 (errno.errorcode.get(got, got), errno.errorcode.get(want, want)))
            for rel in self.touched(op):
                for d in list(self.durable):
                    if d == rel or d.startswith(rel + "/") or rel.startswith(d + "/"):
                        del self.durable[d]
            if op[0] == "fsync" and want == 0 and not os.path.isdir(os.path.join(self.ref, op[1])):
                with open(os.path.join(self.ref, op[1]), "rb") as f:
                    self.durable[op[1]] = hashlib.sha256(f.read()).hexdigest()
                # hard links share content: a write through another name changes it
                st = os.stat(os.path.join(self.ref, op[1]))
                if st.st_nlink > 1:
                    del self.durable[op[1]]
            a, b = snapshot(self.ref), snapshot(self.mount.path)
            if a != b:
                diff = sorted(set(a.items()) ^ set(b.items()))[:6]
                return self.fail(step, op, "trees differ: %s" % diff)
        rc = self.mount.stop()
        if rc != 0:
            return self.fail(self.nops, None, "final unmount status %s" % rc)
        self.mount_fs()
        if snapshot(self.mount.path) != snapshot(self.ref):
            return self.fail(self.nops, None, "tree differs after the final remount")
        print("fsx_zdbfs seed=%d%s: %d operations, all equal; %s" %
              (self.seed, (" blocksize=%s" % self.blocksize if self.blocksize else "") +
               (" flushsize=%s" % self.flushsize if self.flushsize else ""), self.nops, ", ".join("%s %d" % kv for kv in sorted(self.counts.items()))))
        return 0

    def cleanup(self):
        if self.mount:
            self.mount.cleanup()
        self.zdb.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--ops", type=int, default=1500)
    ap.add_argument("--blocksize", default=None, help="of the filesystem (4K: most files get map pages)")
    ap.add_argument("--flushsize", default=None,
                    help="zdbfs flushsize= (small: write-backs under way during most operations)")
    a = ap.parse_args()
    if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
        print("fsx_zdbfs: needs root and /dev/fuse")
        return 77
    zdbtest.BUILD_DIR = a.build
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 30)
    work = tempfile.mkdtemp(prefix="fsx-zdbfs-")
    x = Exerciser(seed, a.ops, work, a.blocksize, a.flushsize)
    try:
        return x.run()
    finally:
        x.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
