#!/usr/bin/env python3
"""zdbfs mounted on a real zdb: data through remounts, kill -9 of zdbfs after fsync, zdb
restarts and outages, the 0-db-fs ioctls, set-up errors, and real workloads (tar of a
source tree, git clone + fsck, sqlite after kill -9, a C build)."""
import fcntl
import hashlib
import os
import random
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zdbtest  # noqa: E402
import zdbfstest  # noqa: E402

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tree_digest(root):
    """{relative path: (type, mode, size or target, sha256)} of a tree."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if os.path.islink(p):
                out[rel] = ("l", os.readlink(p))
            elif os.path.isdir(p):
                out[rel] = ("d", st.st_mode & 0o7777)
            else:
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                out[rel] = ("f", st.st_mode & 0o7777, st.st_size, h.hexdigest())
    return out


class ZdbfsCase(zdbtest.ZdbTestCase):
    def setUp(self):
        if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
            self.skipTest("needs root and /dev/fuse")
        self.tmp = tempfile.mkdtemp(prefix="zdbfstest-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.zdb = self.new_zdb(tmpdir=os.path.join(self.tmp, "zdb"))
        self.zdb.keep_port = True

    def mount(self, *opts, autons=True):
        o = list(opts) + (["autons"] if autons else [])
        m = zdbfstest.Mount(self.zdb, self.tmp, o)
        self.addCleanup(m.cleanup)
        return m.start()

    def refused(self, *opts):
        m = zdbfstest.Mount(self.zdb, self.tmp, list(opts))
        self.addCleanup(m.cleanup)
        return m.start(expect_failure=True)


class TestData(ZdbfsCase):
    def test_tree_survives_remount(self):
        m = self.mount()
        rnd = random.Random(11)
        src = os.path.join(self.tmp, "src")
        os.makedirs(src)
        for i in range(40):
            d = os.path.join(src, "d%d" % (i % 7), "sub%d" % (i % 3))
            os.makedirs(d, exist_ok=True)
            size = rnd.choice([0, 1, 4095, 4096, 131071, 131072, 131073, 1 << 20, 3 * (1 << 20) + 17])
            with open(os.path.join(d, "f%d" % i), "wb") as f:
                f.write(rnd.randbytes(size))
        os.symlink("d0/sub0/f0", os.path.join(src, "link"))
        subprocess.run(["cp", "-a", src + "/.", m.path], check=True, timeout=120)
        want = tree_digest(src)
        self.assertEqual(tree_digest(m.path), want)
        self.assertEqual(m.stop(), 0)
        m2 = self.mount()
        self.assertEqual(tree_digest(m2.path), want)
        # sparse files, truncation and holes through the kernel
        p = os.path.join(m2.path, "sparse")
        with open(p, "wb") as f:
            f.seek(10 << 20)
            f.write(b"end")
            f.truncate(5 << 20)
            f.truncate(6 << 20)
        with open(p, "rb") as f:
            data = f.read()
        self.assertEqual(len(data), 6 << 20)
        self.assertEqual(data.count(0), 6 << 20)

    def test_open_with_o_trunc(self):
        # found by fsx_zdbfs (seed 1): libfuse asks the kernel for atomic O_TRUNC, so the
        # truncation is zdbfs's to do at open
        m = self.mount()
        p = os.path.join(m.path, "t")
        with open(p, "wb") as f:
            f.write(b"x" * 400000)
        fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
        os.pwrite(fd, b"B" * 1000, 64986)
        os.close(fd)
        with open(p, "rb") as f:
            data = f.read()
        self.assertEqual(data, bytes(64986) + b"B" * 1000)
        fd = os.open(p, os.O_RDONLY | os.O_TRUNC)  # Linux truncates then too (as ext4 does)
        os.close(fd)
        self.assertEqual(os.path.getsize(p), 0)

    def test_parallel_direct_reads(self):
        # many O_DIRECT reads at once, which the loop takes together and fetches in one
        # batch, beside a writer of another file: every read gets its own bytes
        import mmap
        import threading
        for opts in ([], ["nobatch"]):
            m = self.mount(*opts)
            rnd = random.Random(5)
            data = rnd.randbytes(8 << 20)
            p = os.path.join(m.path, "big")
            with open(p, "wb") as f:
                f.write(data)
            self.assertEqual(m.stop(), 0)
            m = self.mount(*opts)  # cold: nothing cached
            p = os.path.join(m.path, "big")
            errors = []

            def reader(seed):
                r = random.Random(seed)
                buf = mmap.mmap(-1, 65536)
                fd = os.open(p, os.O_RDONLY | os.O_DIRECT)
                try:
                    for _ in range(150):
                        n = r.choice([4096, 8192, 65536])
                        off = r.randrange(0, (len(data) - n) // 4096 + 2) * 4096
                        got = os.preadv(fd, [memoryview(buf)[:n]], off)
                        want = data[off:off + n]
                        if got != len(want) or buf[:got] != want:
                            errors.append((off, n, got))
                finally:
                    os.close(fd)
                    buf.close()

            def writer():
                with open(os.path.join(m.path, "other"), "wb") as f:
                    for i in range(64):
                        f.write(bytes([i]) * 65536)
                        f.flush()

            ts = [threading.Thread(target=reader, args=(i,)) for i in range(12)]
            ts.append(threading.Thread(target=writer))
            for t in ts:
                t.start()
            for t in ts:
                t.join(120)
            self.assertFalse(any(t.is_alive() for t in ts), opts)
            self.assertEqual(errors, [], opts)
            with open(os.path.join(m.path, "other"), "rb") as f:
                self.assertEqual(f.read(), b"".join(bytes([i]) * 65536 for i in range(64)))
            self.assertEqual(m.stop(), 0)

    def test_fsynced_data_survives_kill9(self):
        m = self.mount()
        rnd = random.Random(5)
        synced = {}
        for i in range(30):
            data = rnd.randbytes(rnd.choice([10, 5000, 300000, 2 << 20]))
            name = os.path.join(m.path, "s%d" % i)
            with open(name, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            synced["s%d" % i] = hashlib.sha256(data).hexdigest()
        # an overwrite that is fsynced, then writes that are not
        with open(os.path.join(m.path, "s0"), "r+b") as f:
            f.write(b"X" * 100)
            os.fsync(f.fileno())
        with open(os.path.join(m.path, "s0"), "rb") as f:
            synced["s0"] = hashlib.sha256(f.read()).hexdigest()
        os.mkdir(os.path.join(m.path, "unsynced"))
        for i in range(50):
            with open(os.path.join(m.path, "unsynced", "u%d" % i), "wb") as f:
                f.write(b"u" * 1000)
        m.kill9()
        m2 = self.mount()
        for name, digest in synced.items():
            with open(os.path.join(m2.path, name), "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).hexdigest(), digest, name)
        # consistent: everything listed can be stat'ed and read
        for dirpath, dirnames, filenames in os.walk(m2.path):
            for n in filenames:
                with open(os.path.join(dirpath, n), "rb") as f:
                    f.read()

    def test_ioctls(self):
        m = self.mount()
        with open(os.path.join(m.path, "x"), "wb") as f:
            f.write(b"z" * 100000)
        fd = os.open(m.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            buf = bytearray(240)
            fcntl.ioctl(fd, 0x80F04501, buf)
            fields = struct.unpack("<30Q", bytes(buf))
            self.assertEqual(fields[0], 2)  # version
            self.assertGreater(fields[1], 0)  # fuse_reqs
            self.assertGreaterEqual(fields[28], 100000)  # write_bytes
            snap = bytearray(8)
            fcntl.ioctl(fd, 0x80084500, snap)
            self.assertGreater(struct.unpack("<Q", bytes(snap))[0], 1700000000)
        finally:
            os.close(fd)

    def test_statfs_reports_usage(self):
        m = self.mount("size=1G")
        st0 = os.statvfs(m.path)
        self.assertEqual(st0.f_blocks * st0.f_frsize, 1 << 30)
        with open(os.path.join(m.path, "big"), "wb") as f:
            f.write(os.urandom(8 << 20))
            os.fsync(f.fileno())
        st1 = os.statvfs(m.path)
        self.assertLess(st1.f_bfree, st0.f_bfree - (7 << 20) // st0.f_frsize)
        self.assertEqual(st1.f_namemax, 255)


class TestZdbTrouble(ZdbfsCase):
    def test_zdb_restart_is_survived(self):
        m = self.mount()
        with open(os.path.join(m.path, "a"), "wb") as f:
            f.write(b"before")
            os.fsync(f.fileno())
        self.zdb.restart(kill=True)
        with open(os.path.join(m.path, "b"), "wb") as f:
            f.write(b"after")
            os.fsync(f.fileno())
        self.assertEqual(m.stop(), 0)
        m2 = self.mount()
        with open(os.path.join(m2.path, "a"), "rb") as f:
            self.assertEqual(f.read(), b"before")
        with open(os.path.join(m2.path, "b"), "rb") as f:
            self.assertEqual(f.read(), b"after")

    def test_zdb_gone_gives_eio_then_recovers(self):
        m = self.mount("timeout=1500")
        os.mkdir(os.path.join(m.path, "d"))
        with open(os.path.join(m.path, "d", "f"), "wb") as f:
            f.write(b"kept")
            os.fsync(f.fileno())
        self.zdb.kill9()
        for argv in (["df", m.path], ["ls", "-l", os.path.join(m.path, "new-name")]):
            t0 = time.monotonic()
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
            took = time.monotonic() - t0
            self.assertNotEqual(r.returncode, 0, argv)
            self.assertLess(took, 20, argv)
        t0 = time.monotonic()
        with self.assertRaises(OSError):
            with open(os.path.join(m.path, "g"), "wb") as f:
                f.write(b"x")
                os.fsync(f.fileno())
        self.assertLess(time.monotonic() - t0, 30)
        self.zdb.start()
        deadline = time.monotonic() + 20
        while True:
            try:
                os.statvfs(m.path)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with open(os.path.join(m.path, "d", "f"), "rb") as f:
            self.assertEqual(f.read(), b"kept")
        with open(os.path.join(m.path, "h"), "wb") as f:
            f.write(b"back")
            os.fsync(f.fileno())
        self.assertEqual(m.stop(), 0)
        m2 = self.mount()
        with open(os.path.join(m2.path, "h"), "rb") as f:
            self.assertEqual(f.read(), b"back")


class TestSetupErrors(ZdbfsCase):
    def test_unreachable(self):
        port = zdbtest.free_port()
        m = zdbfstest.Mount(self.zdb, self.tmp, [])
        m.argv = lambda: [zdbfstest.zdbfs_binary(), m.path, "-f", "-o",
                          "host=127.0.0.1,port=%d,timeout=1000" % port]
        self.addCleanup(m.cleanup)
        rc, out = m.start(expect_failure=True)
        self.assertNotEqual(rc, 0)
        self.assertIn("127.0.0.1:%d" % port, out)

    def test_missing_namespace_without_autons(self):
        rc, out = self.refused()
        self.assertNotEqual(rc, 0)
        self.assertIn("zdbfs-meta", out)

    def test_wrong_mode_and_password(self):
        c = self.client(self.zdb)
        for ns in ("zdbfs-meta", "zdbfs-data", "zdbfs-temp"):
            c.cmd("NSNEW", ns)
        c.cmd("NSSET", "zdbfs-temp", "password", "hello")
        c.cmd("NSSET", "zdbfs-temp", "public", "0")
        rc, out = self.refused()
        self.assertIn("userkey", out)  # user mode where sequential is needed
        for ns in ("zdbfs-meta", "zdbfs-data", "zdbfs-temp"):
            c.cmd("NSSET", ns, "mode", "seq")
        c.cmd("NSSET", "zdbfs-meta", "password", "secret")
        c.cmd("NSSET", "zdbfs-meta", "public", "0")
        rc, out = self.refused("ts=hello")
        self.assertNotEqual(rc, 0)
        self.assertIn("zdbfs-meta", out)
        # names and passwords given as options are used (0-db-fs ignores them)
        m = self.mount("ms=secret", autons=False)
        with open(os.path.join(m.path, "ok"), "w") as f:
            f.write("ok")
        m.stop()

    def test_not_a_filesystem(self):
        c = self.client(self.zdb)
        c.cmd("NSNEW", "zdbfs-meta")
        c.cmd("NSSET", "zdbfs-meta", "mode", "seq")
        c.cmd("SELECT", "zdbfs-meta")
        c.cmd("SET", "", "not a header")
        rc, out = self.refused("autons")
        self.assertNotEqual(rc, 0)
        self.assertIn("not a zdbfs", out)


def v1_inode(mode, size, links=1, uid=0, gid=0, t=1600000000):
    return struct.pack("<IQIHHQIIII", mode, 0, 0, uid, gid, size, links, t, t, t)


class V1Writer:
    """Writes a filesystem in 0-db-fs v0.1.11's layout (docs/zdbfs-format.md, layout 1)."""

    UNSET = 0x4242424242424242

    def __init__(self, client):
        self.c = client
        for ns in ("zdbfs-meta", "zdbfs-data", "zdbfs-temp"):
            self.c.cmd("NSNEW", ns)
            self.c.cmd("NSSET", ns, "mode", "seq")
        self.c.cmd("NSSET", "zdbfs-temp", "password", "hello")
        for ns, magic in (("zdbfs-meta", b"ZDBFSM"), ("zdbfs-data", b"ZDBFSD"), ("zdbfs-temp", b"ZDBFST")):
            self.c.cmd("SELECT", ns, *(["hello"] if ns == "zdbfs-temp" else []))
            self.c.cmd("SET", b"", magic + struct.pack("<HHQ", 1, 0, 10 << 30))

    def put(self, ns, value, key=None):
        self.c.cmd("SELECT", ns)
        r = self.c.cmd("SET", b"" if key is None else struct.pack("<Q", key), value)
        return struct.unpack("<Q", r)[0] if key is None else key

    def reserve(self):
        return self.put("zdbfs-meta", b"placeholder")

    def file(self, data, mode=0o100644, links=1):
        keys = []
        for o in range(0, len(data), 131072):
            keys.append(self.put("zdbfs-data", data[o:o + 131072]))
        v = v1_inode(mode, len(data), links) + struct.pack("<Q", len(keys))
        v += b"".join(struct.pack("<I", k) for k in keys)
        return self.put("zdbfs-meta", v)

    def symlink(self, target):
        t = target.encode()
        return self.put("zdbfs-meta", v1_inode(0o120777, len(t)) + t + b"\x42")

    def directory(self, key, parent, entries, mode=0o40755):
        """entries: {name: ino}; key reserved beforehand (the root is key 1)."""
        lists = {}
        for name, ino in list(entries.items()) + [(".", parent), ("..", parent)]:
            lists.setdefault(sum(name.encode()) % 128, []).append((name, ino))
        slots = [self.UNSET] * 128
        for b, ents in lists.items():
            lk = self.reserve()
            body = struct.pack("<QI", lk, len(ents)) + b"\xde\xad\xbe\xef"
            for name, ino in ents:
                n = name.encode()
                body += struct.pack("<HQ", len(n), ino) + n + b"\0"
            self.put("zdbfs-meta", body, lk)
            slots[b] = lk
        v = v1_inode(mode, 0, 2) + b"".join(struct.pack("<Q", k) for k in slots)
        self.put("zdbfs-meta", v, key)


class TestUpgrade(ZdbfsCase):
    def test_0dbfs_filesystem_mounts_and_upgrades(self):
        w = V1Writer(self.client(self.zdb))
        root = w.reserve()
        self.assertEqual(root, 1)
        rnd = random.Random(3)
        big = rnd.randbytes(9 * 131072 + 5)  # 10 blocks, a short last one
        small = b"small file\n"
        f_big = w.file(big)
        f_small = w.file(small, links=2)
        lnk = w.symlink("sub/inner")
        sub = w.reserve()
        inner = w.file(b"inside")
        many = {"m%03d" % i: w.file(b"%d" % i) for i in range(150)}
        w.directory(sub, root, dict(inner=inner, **many))
        w.directory(root, root, {"big": f_big, "small": f_small, "hard": f_small, "link": lnk, "sub": sub})
        m = self.mount(autons=False)
        self.assertIn("upgrad", m.log())
        with open(os.path.join(m.path, "big"), "rb") as f:
            self.assertEqual(f.read(), big)
        for n in ("small", "hard"):
            with open(os.path.join(m.path, n), "rb") as f:
                self.assertEqual(f.read(), small)
        self.assertEqual(os.stat(os.path.join(m.path, "small")).st_nlink, 2)
        self.assertEqual(os.readlink(os.path.join(m.path, "link")), "sub/inner")
        with open(os.path.join(m.path, "link"), "rb") as f:
            self.assertEqual(f.read(), b"inside")
        self.assertEqual(len(os.listdir(os.path.join(m.path, "sub"))), 151)
        self.assertEqual(os.stat(m.path).st_nlink, 3)
        # writable: append to an old file, new files, removals
        with open(os.path.join(m.path, "big"), "ab") as f:
            f.write(b"more")
        os.unlink(os.path.join(m.path, "sub", "m007"))
        with open(os.path.join(m.path, "sub", "new"), "wb") as f:
            f.write(b"new")
        self.assertEqual(m.stop(), 0, m.log())
        m2 = self.mount(autons=False)
        self.assertNotIn("upgrading", m2.log().split("mounted")[-1])
        with open(os.path.join(m2.path, "big"), "rb") as f:
            self.assertEqual(f.read(), big + b"more")
        names = sorted(os.listdir(os.path.join(m2.path, "sub")))
        self.assertEqual(len(names), 151)
        self.assertIn("new", names)
        self.assertNotIn("m007", names)


class TestWorkloads(ZdbfsCase):
    def test_untar_source_tree_and_diff(self):
        m = self.mount()
        src = "/usr/include"
        tar = subprocess.Popen(["tar", "-C", src, "-cf", "-", "."], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-C", m.path, "-xf", "-"], stdin=tar.stdout, check=True, timeout=600)
        tar.stdout.close()
        tar.wait(timeout=60)
        r = subprocess.run(["diff", "-r", "--no-dereference", src, m.path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout[-3000:])
        subprocess.run(["sync"], check=True, timeout=120)
        self.assertEqual(m.stop(), 0)
        m2 = self.mount()
        r = subprocess.run(["diff", "-r", "--no-dereference", src, m2.path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout[-3000:])

    def test_git_clone_fsck_and_build(self):
        if not os.path.isdir(os.path.join(SOURCE_DIR, ".git")):
            self.skipTest("source tree is not a git checkout")
        m = self.mount()
        dst = os.path.join(m.path, "repo")
        subprocess.run(["git", "clone", "-q", "--no-hardlinks", SOURCE_DIR, dst], check=True,
                       timeout=300)
        r = subprocess.run(["git", "-C", dst, "fsck", "--full", "--strict"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout[-3000:])
        # a C build on the mount: lib/util and lib/fs of the clone, compiled and archived there
        out = os.path.join(m.path, "obj")
        os.mkdir(out)
        objs = []
        for mod in ("util", "fs"):
            for name in sorted(os.listdir(os.path.join(dst, "lib", mod))):
                if not name.endswith(".c") or name == "version.c":  # version.c needs a generated header
                    continue
                o = os.path.join(out, mod + "_" + name[:-2] + ".o")
                subprocess.run(["cc", "-std=gnu11", "-D_GNU_SOURCE", "-O1", "-Wall", "-I",
                                os.path.join(dst, "lib"), "-c", os.path.join(dst, "lib", mod, name),
                                "-o", o], check=True, timeout=300)
                objs.append(o)
        subprocess.run(["ar", "rcs", os.path.join(out, "lib.a")] + objs, check=True, timeout=60)
        r = subprocess.run(["nm", os.path.join(out, "lib.a")], stdout=subprocess.PIPE, check=True,
                           timeout=60)
        self.assertIn(b"qs_fs_open", r.stdout)

    def test_sqlite_after_kill9(self):
        m = self.mount()
        db = os.path.join(m.path, "t.db")
        con = sqlite3.connect(db)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        con.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
        committed = 0
        for i in range(200):
            con.execute("INSERT INTO t (v) VALUES (?)", (os.urandom(500 + (i % 7) * 300),))
            con.commit()
            committed += 1
        # a transaction left open when zdbfs dies
        con.execute("INSERT INTO t (v) VALUES (?)", (b"x" * 10000,))
        m.kill9()
        try:
            con.close()
        except sqlite3.Error:
            pass
        m2 = self.mount()
        con = sqlite3.connect(os.path.join(m2.path, "t.db"))
        self.assertEqual(con.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        self.assertEqual(con.execute("SELECT count(*) FROM t").fetchone()[0], committed)
        con.close()


if __name__ == "__main__":
    zdbtest.main()
