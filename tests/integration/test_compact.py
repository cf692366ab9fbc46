#!/usr/bin/env python3
"""zdb integration tests: compaction (COMPACT, --compact-ratio) and crashes during it.

Every test fills a namespace with values spread over several 512 KiB data files, with
overwrites and deletes, keeps a model of what must be stored, and checks every key against
it after compaction, after restarts, and after the server was killed (kill -9, or SIGKILL at a
chosen compaction step through ZDB_COMPACT_CRASH_AT) while it was compacting."""

import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zdbtest  # noqa: E402
from test_disk_format import crc32c_zdb, read_data, read_index  # noqa: E402
from zdbtest import ConnectionClosed, RespError, ZdbTestCase, le64  # noqa: E402

STEPS = 8  # lib/store/compact.h ZDB_COMPACT_STEPS
STATUS = re.compile(r"OK files=(\d+) before=(\d+) after=(\d+) reclaimed=(\d+)$")


def data_bytes(z, ns="default"):
    d = z.ns_data_dir(ns)
    return sum(os.path.getsize(os.path.join(d, n)) for n in os.listdir(d) if re.fullmatch(r"d[0-9]+", n))


def leftovers(z, ns="default"):
    return [n for d in (z.ns_data_dir(ns), z.ns_index_dir(ns)) for n in os.listdir(d) if "compact" in n]


def parse_status(reply):
    assert isinstance(reply, str), reply
    m = STATUS.match(reply)
    assert m, reply
    files, before, after, reclaimed = (int(x) for x in m.groups())
    assert before - after == reclaimed
    return files, reclaimed


class Model:
    """key -> value (None = deleted); in seq mode keys are 8-byte ids."""

    def __init__(self, seq):
        self.seq = seq
        self.kv = {}

    def set(self, c, rnd, key=None, size=None):
        v = rnd.randbytes(size if size is not None else rnd.randint(200, 6000))
        if self.seq:
            r = c.cmd("SET", key if key is not None else b"", v)
            assert isinstance(r, bytes) and len(r) == 8, r
            if key is None:
                key = r
            else:
                self.kv[le64(len(self.kv))] = None  # the update's deleted copy takes an id
        else:
            r = c.cmd("SET", key, v)
            assert r == key or r is None, r
        self.kv[key] = v
        return key

    def delete(self, c, key):
        assert c.cmd("DEL", key) == "OK"
        self.kv[key] = None

    def fill(self, c, rnd, n=300):
        """n new values, then overwrites and deletes over the whole range, in several rounds
        so that every data file has dead entries."""
        keys = []
        for i in range(n):
            keys.append(self.set(c, rnd, None if self.seq else b"k%04d" % i))
        for round_ in range(3):
            for k in rnd.sample(keys, n // 3):
                if self.kv[k] is not None:
                    self.set(c, rnd, k)
            for k in rnd.sample(keys, n // 10):
                if self.kv[k] is not None:
                    self.delete(c, k)
            for i in range(n // 10):
                keys.append(self.set(c, rnd, None if self.seq else b"r%d-%04d" % (round_, i)))

    def check(self, c):
        keys = list(self.kv)
        for i in range(0, len(keys), 64):
            part = keys[i:i + 64]
            got = c.pipeline([("GET", k) for k in part])
            for k, g in zip(part, got):
                if g != self.kv[k]:
                    raise AssertionError("key %r: expected %r..., got %r..." % (
                        k, (self.kv[k] or b"")[:16], (g or b"")[:16] if not isinstance(g, RespError) else g))
        live = sum(1 for v in self.kv.values() if v is not None)
        assert c.cmd("DBSIZE") == live, (c.cmd("DBSIZE"), live)


class CompactTest(ZdbTestCase):

    def filled(self, seq=False, args=(), seed=1, n=300):
        mode = ["--mode", "seq"] if seq else ["--mode", "user"]
        z = self.new_zdb("--datasize", "512K", *mode, *args)
        c = self.client(z)
        m = Model(seq)
        m.fill(c, random.Random(seed), n)
        return z, c, m

    def test_command(self):
        z, c, m = self.filled()
        before = data_bytes(z)
        # a prefix works ("C" stays CHECK), argument checks
        self.assertError(c.cmd("COMPACT", "x"), "Invalid argument")
        self.assertError(c.cmd("COMPACT", "-1"), "Invalid argument")
        self.assertError(c.cmd("COMPACT", "1", "2"), "Unexpected arguments")
        self.assertError(c.cmd("COMPACT", "999"), "Data file not found")
        info = zdbtest.info_dict(c.cmd("NSINFO", "default"))
        active = int(info["data_current_id"])
        self.assertGreaterEqual(active, 3)
        self.assertError(c.cmd("COMPACT", str(active)), "Cannot compact the active data file")
        self.assertEqual(c.cmd("C", b"k0001"), c.cmd("CHECK", b"k0001"))
        files, reclaimed = parse_status(c.cmd("COMP", "0"))
        self.assertEqual(files, 1)
        self.assertGreater(reclaimed, 0)
        files, reclaimed2 = parse_status(c.cmd("COMPACT", "*"))
        self.assertGreaterEqual(files, 2)
        files, r3 = parse_status(c.cmd("COMPACT"))
        self.assertEqual((files, r3), (0, 0))
        self.assertEqual(data_bytes(z), before - reclaimed - reclaimed2)
        self.assertEqual(leftovers(z), [])
        m.check(c)
        z.restart()
        c = self.client(z)
        m.check(c)

    def read_like_0db(self, z, m):
        """Reads the files as 0-db loads them, with the independent reader of
        test_disk_format.py: index files in order, a flagged entry deletes its key; then every
        live entry must name a whole data entry with its key, length, CRC and the model's
        value. Every data file must parse to its end."""
        idir, ddir = z.ns_index_dir(), z.ns_data_dir()
        ids = sorted(int(n[1:]) for n in os.listdir(idir) if re.fullmatch(r"i[0-9]+", n))
        self.assertEqual(ids, list(range(len(ids))))
        data = {}
        compacted = 0
        for n in ids:
            hdr, entries = read_data(os.path.join(ddir, "d%d" % n))
            self.assertEqual((hdr["magic"], hdr["version"], hdr["fileid"]), (b"DAT0", 3, n))
            compacted += hdr["opened"] >> 63
            data[n] = {e["pos"]: e for e in entries}
        self.assertGreater(compacted, 0)
        live = {}
        slot = 0
        for n in ids:
            hdr, entries = read_index(os.path.join(idir, "i%d" % n))
            self.assertEqual((hdr["magic"], hdr["version"], hdr["fileid"]), (b"IDX0", 4, n))
            for e in entries:
                key = le64(slot) if m.seq else e["key"]
                slot += 1
                if e["flags"] & 1:
                    live.pop(key, None)
                else:
                    live[key] = e
        self.assertEqual(sorted(live), sorted(k for k, v in m.kv.items() if v is not None))
        for key, e in live.items():
            d = data[e["dataid"]].get(e["offset"])
            self.assertIsNotNone(d, "key %r names d%d:%d, not an entry" % (key, e["dataid"], e["offset"]))
            self.assertEqual(d["key"], key)
            self.assertEqual((d["length"], d["crc"], d["flags"]), (e["length"], e["crc"], 0))
            self.assertEqual(crc32c_zdb(d["payload"]), d["crc"])
            self.assertEqual(d["payload"], m.kv[key])

    def test_files_read_like_0db(self):
        for seq in (False, True):
            with self.subTest(seq=seq):
                z, c, m = self.filled(seq=seq, n=150)
                parse_status(c.cmd("COMPACT"))
                z.stop()
                self.read_like_0db(z, m)

    def test_admin_only_and_frozen(self):
        z = self.new_zdb("--datasize", "512K", "--admin", "secret")
        c = self.client(z)
        self.assertError(c.cmd("COMPACT"), "Permission denied")
        self.assertEqual(c.cmd("AUTH", "secret"), "OK")
        self.assertEqual(parse_status(c.cmd("COMPACT")), (0, 0))
        self.assertEqual(c.cmd("NSSET", "default", "freeze", "1"), "OK")
        self.assertError(c.cmd("COMPACT"), "Namespace is temporarily frozen (read-write disabled)")

    def test_seq_mode(self):
        z, c, m = self.filled(seq=True)
        before = data_bytes(z)
        files, reclaimed = parse_status(c.cmd("COMPACT", "*"))
        self.assertGreaterEqual(files, 3)
        self.assertGreater(reclaimed, before // 5)
        m.check(c)
        # new values get the next ids, updates still work
        rnd = random.Random(7)
        m.set(c, rnd)
        m.set(c, rnd, next(k for k, v in m.kv.items() if v is not None))
        m.check(c)
        z.restart()
        c = self.client(z)
        m.check(c)

    def test_scan_unchanged(self):
        """SCAN sees the same keys, lengths and times before and after compaction."""
        z, c, m = self.filled()

        def scan_all():
            out, cur = [], None
            while True:
                r = c.cmd("SCAN") if cur is None else c.cmd("SCAN", cur)
                if isinstance(r, RespError):
                    self.assertEqual(r.text, "No more data")
                    return out
                cur = r[0]
                out.extend((e[0], e[1], e[2]) for e in r[1])

        before = scan_all()
        self.assertEqual(sorted(k for k, _, _ in before), sorted(k for k, v in m.kv.items() if v is not None))
        parse_status(c.cmd("COMPACT"))
        self.assertEqual(scan_all(), before)

    def test_history_ends_at_reclaimed_versions(self):
        z = self.new_zdb("--datasize", "512K")
        c = self.client(z)
        big = b"x" * 200000
        for i in range(4):
            c.cmd("SET", "h", b"%d" % i + big)  # versions 0..3, spread over two files
        c.cmd("NSJUMP")
        r = c.cmd("HISTORY", "h")
        self.assertEqual(r[2], b"3" + big)
        self.assertIsNotNone(r[0])
        self.assertEqual(c.cmd("HISTORY", "h", r[0])[2], b"2" + big)
        ekey = r[0]
        parse_status(c.cmd("COMPACT"))
        self.assertError(c.cmd("HISTORY", "h", ekey), "No more history")
        r = c.cmd("HISTORY", "h")
        self.assertEqual(r[2], b"3" + big)
        self.assertIsNone(r[0])  # older versions are gone: the walk ends cleanly
        self.assertEqual(c.cmd("GET", "h"), b"3" + big)

    def test_automatic(self):
        z, c, m = self.filled(args=("--compact-ratio", "0.3"))
        before = data_bytes(z)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and data_bytes(z) > before * 0.8:
            time.sleep(0.2)
        self.assertLess(data_bytes(z), before * 0.8)
        m.check(c)
        z.restart()
        m.check(self.client(z))

    def test_bad_ratio_refused(self):
        for bad in ("0", "1.5", "-0.2", "x", "nan"):
            z = zdbtest.Zdb(args=["--compact-ratio", bad])
            try:
                rc, out = z.start_expect_failure()
                self.assertEqual(rc, 1)
                self.assertIn("compact-ratio", out)
            finally:
                z.cleanup()

    # -- crashes ------------------------------------------------------------------------

    def template(self, seq):
        """A filled store in a directory of its own, stopped; returns (dir, model)."""
        tmp = tempfile.mkdtemp(prefix="zdbtest-compact-")
        self.addCleanup(shutil.rmtree, tmp, True)
        z = zdbtest.Zdb(args=["--datasize", "512K", "--mode", "seq" if seq else "user"], tmpdir=tmp)
        z.start()
        c = z.client()
        m = Model(seq)
        m.fill(c, random.Random(11 if seq else 12))
        c.close()
        z.stop()
        return tmp, m

    def copy_of(self, tmp, name):
        dst = tempfile.mkdtemp(prefix="zdbtest-compact-%s-" % name)
        self.addCleanup(shutil.rmtree, dst, True)
        shutil.copytree(os.path.join(tmp, "index"), os.path.join(dst, "index"))
        shutil.copytree(os.path.join(tmp, "data"), os.path.join(dst, "data"))
        return dst

    def after_crash(self, z, m, before):
        """Restart after a crash, check everything, compact to the end, check again."""
        z.start()
        self.assertEqual(leftovers(z), [])
        c = z.client()
        try:
            m.check(c)
            size = data_bytes(z)
            self.assertLessEqual(size, before)
            parse_status(c.cmd("COMPACT"))
            m.check(c)
        finally:
            c.close()
        z.restart(kill=True)
        c = z.client()
        try:
            m.check(c)
            self.assertEqual(parse_status(c.cmd("COMPACT")), (0, 0))
        finally:
            c.close()
        z.stop()

    def crash_at_steps(self, seq):
        tmp, m = self.template(seq)
        mode = ["--mode", "seq" if seq else "user"]
        for step in range(1, STEPS + 1):
            with self.subTest(step=step):
                d = self.copy_of(tmp, "step%d" % step)
                z = zdbtest.Zdb(args=["--datasize", "512K"] + mode, tmpdir=d,
                                binary=zdbtest.faults_binary())
                before = data_bytes(z)
                os.environ["ZDB_COMPACT_CRASH_AT"] = str(step)
                try:
                    z.start()
                finally:
                    del os.environ["ZDB_COMPACT_CRASH_AT"]
                c = z.client()
                try:
                    r = c.cmd("COMPACT")
                    self.fail("the server answered %r instead of dying at step %d" % (r, step))
                except (ConnectionClosed, OSError):
                    pass
                finally:
                    c.close()
                self.assertEqual(z.proc.wait(timeout=30), -signal.SIGKILL)
                z.proc = None
                z.check_sanitizers()
                self.after_crash(z, m, before)

    def test_crash_at_every_step_user(self):
        self.crash_at_steps(False)

    def test_production_binary_has_no_crash_switch(self):
        """Only zdb-faults reads ZDB_COMPACT_CRASH_AT; zdb compacts as usual with it set."""
        tmp, m = self.template(False)
        d = self.copy_of(tmp, "prod")
        z = zdbtest.Zdb(args=["--datasize", "512K"], tmpdir=d)
        os.environ["ZDB_COMPACT_CRASH_AT"] = "1"
        try:
            z.start()
        finally:
            del os.environ["ZDB_COMPACT_CRASH_AT"]
        c = z.client()
        try:
            parse_status(c.cmd("COMPACT"))
            m.check(c)
        finally:
            c.close()
        z.stop()

    def test_crash_at_every_step_seq(self):
        self.crash_at_steps(True)

    def kill_after_delays(self, seq):
        """kill -9 a varying time after COMPACT was sent."""
        tmp, m = self.template(seq)
        mode = ["--mode", "seq" if seq else "user"]
        rnd = random.Random(5)
        for i, delay in enumerate([0, 0.001, 0.003, 0.006, 0.01, 0.02, 0.04] + [rnd.uniform(0, 0.05) for _ in range(3)]):
            with self.subTest(delay=delay):
                d = self.copy_of(tmp, "kill%d" % i)
                z = zdbtest.Zdb(args=["--datasize", "512K"] + mode, tmpdir=d)
                before = data_bytes(z)
                z.start()
                c = z.client()
                c.send_command("COMPACT")
                time.sleep(delay)
                z.kill9()
                c.close()
                self.after_crash(z, m, before)

    def test_kill9_during_compaction_user(self):
        self.kill_after_delays(False)

    def test_kill9_during_compaction_seq(self):
        self.kill_after_delays(True)


if __name__ == "__main__":
    zdbtest.main()
