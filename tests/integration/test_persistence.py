#!/usr/bin/env python3
"""zdb integration tests: persistence, crash recovery and rotation (spec sections 5 and 8)."""

import os
import random
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zdbtest  # noqa: E402
from zdbtest import ConnectionClosed, ZdbTestCase  # noqa: E402

KiB = 1024
MiB = 1024 * 1024

# headers of a freshly started file pair (fileid patched in by the tests)
INDEX_HEADER_ONLY = b"IDX0" + (4).to_bytes(4, "little") + (0).to_bytes(16, "little") + (0).to_bytes(4, "little") + b"\x00"
DATA_HEADER_ONLY = b"DAT0" + (3).to_bytes(4, "little") + (0).to_bytes(16, "little") + (0).to_bytes(4, "little")


def value_for(key, version=0, size=None):
    """Deterministic value of a key (so any value read back can be checked)."""
    rnd = random.Random("%s/%d" % (key, version))
    if size is None:
        size = rnd.randint(0, 3000)
    return rnd.randbytes(size)


def numbered_files(directory, prefix):
    """{N: path} of files named <prefix><N> in directory."""
    out = {}
    if not os.path.isdir(directory):
        return out
    for name in os.listdir(directory):
        m = re.fullmatch(re.escape(prefix) + r"([0-9]+)", name)
        if m:
            out[int(m.group(1))] = os.path.join(directory, name)
    return out


class Model:
    """What the namespace must contain: key -> value (None = deleted)."""

    def __init__(self):
        self.kv = {}

    def apply(self, c, rnd, nops, prefix="k", maxsize=3000):
        for i in range(nops):
            op = rnd.random()
            live = [k for k, v in self.kv.items() if v is not None]
            if op < 0.15 and live:
                k = rnd.choice(live)
                self.assert_ok(c.cmd("DEL", k), "OK")
                self.kv[k] = None
            elif op < 0.35 and live:
                k = rnd.choice(live)
                v = rnd.randbytes(rnd.randint(0, maxsize))
                r = c.cmd("SET", k, v)
                self.assert_ok(r, k.encode() if v != self.kv[k] else None)
                self.kv[k] = v
            else:
                k = "%s%06d" % (prefix, len(self.kv))
                v = rnd.randbytes(rnd.randint(0, maxsize))
                self.assert_ok(c.cmd("SET", k, v), k.encode())
                self.kv[k] = v

    @staticmethod
    def assert_ok(got, expected):
        if got != expected:
            raise AssertionError("expected %r, got %r" % (expected, got))

    def verify(self, test, c, check_size=True):
        keys = list(self.kv)
        for i in range(0, len(keys), 200):
            chunk = keys[i:i + 200]
            replies = c.pipeline([("GET", k) for k in chunk])
            for k, r in zip(chunk, replies):
                test.assertEqual(r, self.kv[k], "key %s" % k)
        if check_size:
            test.assertEqual(c.cmd("DBSIZE"), sum(1 for v in self.kv.values() if v is not None))


class TestRestart(ZdbTestCase):
    def test_sigterm_exit_status(self):
        z = self.new_zdb()
        c = z.client()
        c.cmd("SET", "k", "v")
        c.close()
        self.assertEqual(z.stop(), 128 + 15)

    def test_sigint_exit_status_and_flush(self):
        z = self.new_zdb()
        c = z.client()
        c.cmd("SET", "k", "v")
        c.close()
        os.kill(z.proc.pid, signal.SIGINT)
        rc = z.proc.wait(timeout=zdbtest.STOP_TIMEOUT)
        z.proc = None
        self.assertEqual(rc, 128 + 2)
        z.start()
        c = self.client(z)
        self.assertEqual(c.cmd("GET", "k"), b"v")

    def test_restart_persistence(self):
        z = self.new_zdb()
        c = z.client()
        rnd = random.Random(1)
        model = Model()
        model.apply(c, rnd, 600)
        c.cmd("NSNEW", "second")
        c.cmd("SELECT", "second")
        model2 = Model()
        model2.apply(c, rnd, 200, prefix="s")
        c.close()
        for _ in range(2):
            z.restart()
            c = self.client(z)
            model.verify(self, c)
            c.cmd("SELECT", "second")
            model2.verify(self, c)
            # the server keeps appending correctly after a restart
            model2.apply(c, rnd, 50, prefix="s")
            model2.verify(self, c)
            c.close()

    def test_restart_after_kill9_when_idle(self):
        z = self.new_zdb()
        c = z.client()
        model = Model()
        model.apply(c, random.Random(2), 300)
        c.close()
        z.restart(kill=True)
        c = self.client(z)
        model.verify(self, c)


class TestCrash(ZdbTestCase):
    def run_load_and_kill(self, z, rnd, min_acks, state, nthreads=2):
        """Writer threads doing SET/overwrite/DEL; returns when killed."""
        stop = threading.Event()
        errors = []

        def writer(tid):
            try:
                c = z.client(timeout=30)
            except OSError as e:
                errors.append(e)
                return
            r = random.Random(tid * 1000 + rnd.randint(0, 10 ** 6))
            mine = [k for k in list(state["acked"]) if k.startswith("w%d-" % tid)]
            acked, pending = state["acked"], state["pending"]
            try:
                while not stop.is_set():
                    op = r.random()
                    if op < 0.1 and mine:
                        k = r.choice(mine)
                        if acked[k] is None:
                            continue
                        pending[k] = [None]
                        expected, args = "OK", ("DEL", k)
                        value = None
                    elif op < 0.3 and mine:
                        k = r.choice(mine)
                        value = r.randbytes(r.randint(1, 4000))
                        pending[k] = [value]
                        expected, args = k.encode(), ("SET", k, value)
                        if acked[k] == value:
                            expected = None
                    else:
                        state["count"][tid] += 1
                        k = "w%d-%d-%06d" % (tid, state["round"], state["count"][tid])
                        value = r.randbytes(r.randint(0, 4000))
                        pending[k] = [value]
                        acked[k] = None  # not there before this SET
                        mine.append(k)
                        expected, args = k.encode(), ("SET", k, value)
                    reply = c.cmd(*args)
                    if reply != expected:
                        errors.append("%s %s -> %r" % (args[0], k, reply))
                        return
                    acked[k] = value
                    del pending[k]
                    state["acks"] += 1
            except (ConnectionClosed, OSError):
                pass  # the server was killed under us
            finally:
                c.close()

        start_acks = state["acks"]
        threads = [threading.Thread(target=writer, args=(t,)) for t in range(nthreads)]
        for th in threads:
            th.start()
        deadline = time.monotonic() + 60
        while state["acks"] - start_acks < min_acks and time.monotonic() < deadline and not errors:
            time.sleep(0.005)
        time.sleep(rnd.random() * 0.05)
        z.kill9()
        stop.set()
        for th in threads:
            th.join(30)
        self.assertFalse(any(th.is_alive() for th in threads))
        self.assertEqual(errors, [])
        self.assertGreaterEqual(state["acks"] - start_acks, min_acks, "write load too slow")

    def verify_state(self, z, state):
        c = self.client(z, timeout=60)
        keys = list(state["acked"])
        for i in range(0, len(keys), 200):
            chunk = keys[i:i + 200]
            replies = c.pipeline([("GET", k) for k in chunk])
            for k, r in zip(chunk, replies):
                allowed = [state["acked"][k]] + state["pending"].get(k, [])
                self.assertIn(r, allowed, "acknowledged key %s lost or wrong after kill -9 (got %s bytes)"
                              % (k, None if r is None else len(r)))
        c.close()

    def test_kill9_during_write_load_with_sync(self):
        z = self.new_zdb("--sync", "--datasize", str(512 * KiB))
        rnd = random.Random(42)
        state = {"acked": {}, "pending": {}, "acks": 0, "count": {0: 0, 1: 0}, "round": 0}
        for rnd_no in range(4):
            state["round"] = rnd_no
            self.run_load_and_kill(z, rnd, 400, state)
            z.start()
            self.verify_state(z, state)
            # settle the in-flight operations to what the server now holds
            c = self.client(z)
            for k in list(state["pending"]):
                state["acked"][k] = c.cmd("GET", k)
            state["pending"].clear()
            c.close()
        # and a clean restart on top of all that
        z.restart()
        self.verify_state(z, state)

    def test_kill9_during_seq_load_with_sync(self):
        z = self.new_zdb("--mode", "seq", "--sync", "--datasize", str(512 * KiB))
        acked = {}
        for rnd_no in range(3):
            stop = threading.Event()
            errors = []
            inflight = {}

            def writer():
                r = random.Random(rnd_no)
                try:
                    c = z.client(timeout=30)
                except OSError as e:
                    errors.append(e)
                    return
                try:
                    while not stop.is_set():
                        v = r.randbytes(r.randint(0, 5000))
                        inflight["v"] = v
                        reply = c.cmd("SET", "", v)
                        if not isinstance(reply, bytes) or len(reply) != 8:
                            errors.append("SET '' -> %r" % (reply,))
                            return
                        sid = int.from_bytes(reply, "little")
                        if sid in acked:
                            errors.append("id %d handed out twice" % sid)
                            return
                        acked[sid] = v
                except (ConnectionClosed, OSError):
                    pass
                finally:
                    c.close()

            before = len(acked)
            th = threading.Thread(target=writer)
            th.start()
            deadline = time.monotonic() + 60
            while len(acked) - before < 300 and time.monotonic() < deadline and not errors:
                time.sleep(0.005)
            z.kill9()
            stop.set()
            th.join(30)
            self.assertFalse(th.is_alive())
            self.assertEqual(errors, [])
            z.start()
            c = self.client(z, timeout=60)
            ids = sorted(acked)
            for i in range(0, len(ids), 200):
                chunk = ids[i:i + 200]
                replies = c.pipeline([("GET", zdbtest.le64(s)) for s in chunk])
                for s, got in zip(chunk, replies):
                    self.assertEqual(got, acked[s], "acknowledged id %d lost after kill -9" % s)
            # ids are never handed out twice: the next one is past every acked id
            nxt = c.cmd("SET", "", "probe")
            self.assertGreater(int.from_bytes(nxt, "little"), max(ids))
            acked[int.from_bytes(nxt, "little")] = b"probe"
            c.close()

    def test_kill9_without_sync_still_starts(self):
        # without --sync nothing is promised about the last writes, but the server
        # must restart, keep what it has, and accept new writes
        z = self.new_zdb("--datasize", str(512 * KiB))
        rnd = random.Random(7)
        state = {"acked": {}, "pending": {}, "acks": 0, "count": {0: 0, 1: 0}, "round": 0}
        self.run_load_and_kill(z, rnd, 300, state)
        z.start()
        c = self.client(z)
        self.assertEqual(c.cmd("SET", "after-crash", "ok"), b"after-crash")
        self.assertEqual(c.cmd("GET", "after-crash"), b"ok")
        c.close()
        z.restart()
        c = self.client(z)
        self.assertEqual(c.cmd("GET", "after-crash"), b"ok")


class TestRotation(ZdbTestCase):
    def test_rotation_at_datasize(self):
        datasize = 512 * KiB
        z = self.new_zdb("--datasize", "512K")
        c = z.client()
        values = {}
        for i in range(96):  # 96 x 32 KiB = 3 MiB
            k = "r%03d" % i
            values[k] = value_for(k, size=32 * KiB)
            self.assertEqual(c.cmd("SET", k, values[k]), k.encode())
        c.close()
        idx = numbered_files(z.ns_index_dir(), "i")
        dat = numbered_files(z.ns_data_dir(), "d")
        self.assertGreaterEqual(len(dat), 6, "expected at least 6 data files for 3 MiB at 512 KiB")
        self.assertEqual(sorted(dat), list(range(len(dat))), "data files not numbered 0..N")
        self.assertEqual(sorted(idx), sorted(dat), "index and data files do not pair up")
        for n, path in dat.items():
            self.assertLessEqual(os.path.getsize(path), datasize, "d%d grew past --datasize" % n)
        z.restart()
        c = self.client(z)
        for k, v in values.items():
            self.assertEqual(c.cmd("GET", k), v, k)
        # overwrite and delete keys that live in old files
        self.assertEqual(c.cmd("SET", "r000", "new"), b"r000")
        self.assertEqual(c.cmd("DEL", "r001"), "OK")
        c.close()
        z.restart()
        c = self.client(z)
        self.assertEqual(c.cmd("GET", "r000"), b"new")
        self.assertIsNone(c.cmd("GET", "r001"))
        self.assertEqual(c.cmd("GET", "r095"), values["r095"])
        self.assertEqual(c.cmd("DBSIZE"), 95)

    def test_rotation_in_seq_mode(self):
        z = self.new_zdb("--mode", "seq", "--datasize", str(512 * KiB))
        c = z.client()
        values = []
        for i in range(64):
            v = value_for("seq%d" % i, size=24 * KiB)
            self.assertEqual(c.cmd("SET", "", v), zdbtest.le64(i))
            values.append(v)
        c.close()
        self.assertGreaterEqual(len(numbered_files(z.ns_data_dir(), "d")), 3)
        z.restart()
        c = self.client(z)
        for i, v in enumerate(values):
            self.assertEqual(c.cmd("GET", zdbtest.le64(i)), v, "id %d" % i)
        self.assertEqual(c.cmd("SET", zdbtest.le64(5), "updated"), zdbtest.le64(5))
        self.assertEqual(c.cmd("GET", zdbtest.le64(5)), b"updated")
        r = c.cmd("SET", "", "next")
        self.assertIsInstance(r, bytes)
        self.assertEqual(len(r), 8)
        self.assertGreaterEqual(int.from_bytes(r, "little"), 64)
        self.assertEqual(c.cmd("GET", r), b"next")

    def test_values_bigger_than_datasize(self):
        z = self.new_zdb("--datasize", str(512 * KiB))
        c = z.client(timeout=60)
        values = {"small0": b"s" * 100, "big1": value_for("big1", size=600 * KiB),
                  "small2": b"t" * 100, "huge3": value_for("huge3", size=8 * MiB), "small4": b"u" * 100}
        for k, v in values.items():
            self.assertEqual(c.cmd("SET", k, v), k.encode())
        for k, v in values.items():
            self.assertEqual(c.cmd("GET", k), v, k)
        c.close()
        z.restart()
        c = self.client(z, timeout=60)
        for k, v in values.items():
            self.assertEqual(c.cmd("GET", k), v, k)

    def test_datasize_below_minimum_or_too_big_refused(self):
        for bad in ("1K", str(4 * 1024 * MiB)):
            z = self.new_zdb(start=False)
            rc, out = z.start_expect_failure(["--datasize", bad])
            self.assertEqual(rc, 1, "--datasize %s: %s" % (bad, out))


class TestDamage(ZdbTestCase):
    """Damaged or missing files on disk: the server rebuilds from the data files."""

    def populate(self, z, nops=400, seed=3, files=1):
        c = z.client()
        model = Model()
        rnd = random.Random(seed)
        model.apply(c, rnd, nops, maxsize=3000 if files == 1 else 9000)
        c.close()
        z.stop()
        if files > 1:
            self.assertGreaterEqual(len(numbered_files(z.ns_index_dir(), "i")), files)
        return model

    def last_index(self, z):
        idx = numbered_files(z.ns_index_dir(), "i")
        return idx[max(idx)]

    def check_recovered(self, z, model):
        z.start()
        c = self.client(z)
        model.verify(self, c)
        # writes work and survive another restart
        model.apply(c, random.Random(99), 40, prefix="after")
        model.verify(self, c)
        c.close()
        z.restart()
        c = self.client(z)
        model.verify(self, c)

    def test_index_truncated_by_a_few_bytes(self):
        z = self.new_zdb()
        model = self.populate(z)
        path = self.last_index(z)
        os.truncate(path, os.path.getsize(path) - 5)
        self.check_recovered(z, model)

    def test_index_truncated_to_half(self):
        z = self.new_zdb()
        model = self.populate(z)
        path = self.last_index(z)
        os.truncate(path, os.path.getsize(path) // 2)
        self.check_recovered(z, model)

    def test_index_truncated_to_header(self):
        z = self.new_zdb()
        model = self.populate(z)
        os.truncate(self.last_index(z), 29)
        self.check_recovered(z, model)

    def test_index_truncated_to_zero(self):
        z = self.new_zdb()
        model = self.populate(z)
        os.truncate(self.last_index(z), 0)
        self.check_recovered(z, model)

    def test_index_file_deleted(self):
        z = self.new_zdb()
        model = self.populate(z)
        os.unlink(self.last_index(z))
        self.check_recovered(z, model)

    def test_index_files_damaged_with_rotation(self):
        z = self.new_zdb("--datasize", str(512 * KiB))
        model = self.populate(z, nops=600, seed=5, files=3)
        idx = numbered_files(z.ns_index_dir(), "i")
        last = max(idx)
        os.unlink(idx[1])  # a middle file
        os.truncate(idx[last], os.path.getsize(idx[last]) * 2 // 3)
        self.check_recovered(z, model)

    def test_rebuilt_index_honours_later_deletes(self):
        # a key written in file 0 and deleted while file 2 is active: the DEL leaves a
        # tombstone in d2 and a flag in i0 only; when i0 is lost and rebuilt from d0,
        # the tombstone in d2 must still win
        z = self.new_zdb("--datasize", str(512 * KiB))
        c = z.client()
        c.cmd("SET", "victim", "must stay deleted")
        c.cmd("SET", "survivor", "v0")
        for i in range(12):  # 12 x 100 KiB: into the third file
            c.cmd("SET", "fill%d" % i, value_for("fill%d" % i, size=100 * KiB))
        self.assertGreaterEqual(len(numbered_files(z.ns_data_dir(), "d")), 3)
        self.assertEqual(c.cmd("DEL", "victim"), "OK")
        self.assertEqual(c.cmd("SET", "survivor", "v2"), b"survivor")
        c.close()
        z.stop()
        os.unlink(z.index_file(0))
        z.start()
        c = self.client(z)
        self.assertIsNone(c.cmd("GET", "victim"), "deleted key came back after i0 was rebuilt")
        self.assertEqual(c.cmd("GET", "survivor"), b"v2")
        self.assertEqual(c.cmd("DBSIZE"), 13)

    def test_data_cut_at_many_points(self):
        # a crash can leave the data file cut anywhere; every entry fully before the
        # cut stays readable, nothing after it is served, and the server starts
        z = self.new_zdb()
        c = z.client()
        keys = ["cut%03d" % i for i in range(40)]
        for k in keys:
            c.cmd("SET", k, value_for(k, size=500))
        c.close()
        z.stop()
        with open(z.data_file(0), "rb") as f:
            data = f.read()
        with open(z.index_file(0), "rb") as f:
            index = f.read()
        # end offset of each key's data entry and index entry
        ends, iends = {}, {}
        pos = 28
        ipos = 29
        for k in keys:
            pos += 18 + len(k) + 500
            ends[k] = pos
            ipos += 34 + len(k)
            iends[k] = ipos
        self.assertEqual(pos, len(data))
        self.assertEqual(ipos, len(index))
        rnd = random.Random(13)
        cuts = [28, 28 + 5, 28 + 18 + 3, len(data) - 1, len(data) - 500] + \
            [rnd.randint(29, len(data) - 1) for _ in range(5)]
        for cut in cuts:
            for consistent in (True, False):
                with open(z.data_file(0), "wb") as f:
                    f.write(data[:cut])
                # consistent: the index holds exactly the entries whose data is whole
                # (what a crash between the two appends leaves); otherwise it is ahead
                whole = [k for k in keys if ends[k] <= cut]
                ilen = iends[whole[-1]] if whole else 29
                with open(z.index_file(0), "wb") as f:
                    f.write(index[:ilen] if consistent else index)
                z.start()
                c = z.client()
                try:
                    replies = c.pipeline([("GET", k) for k in keys])
                    for k, r in zip(keys, replies):
                        if ends[k] <= cut:
                            self.assertEqual(r, value_for(k, size=500), "cut %d: %s" % (cut, k))
                        else:
                            self.assertTrue(r is None or isinstance(r, zdbtest.RespError),
                                            "cut %d (index %s): %s served %r" %
                                            (cut, "consistent" if consistent else "ahead", k,
                                             r[:16] if isinstance(r, bytes) else r))
                    if consistent:
                        self.assertEqual(c.cmd("DBSIZE"), len(whole), "cut %d" % cut)
                    self.assertEqual(c.cmd("SET", "after", "write"), b"after")
                    self.assertEqual(c.cmd("GET", "after"), b"write")
                finally:
                    c.close()
                z.stop()

    def test_seq_index_truncated(self):
        z = self.new_zdb("--mode", "seq")
        c = z.client()
        values = [value_for("s%d" % i) for i in range(60)]
        for i, v in enumerate(values):
            self.assertEqual(c.cmd("SET", "", v), zdbtest.le64(i))
        self.assertEqual(c.cmd("DEL", zdbtest.le64(7)), "OK")
        c.close()
        z.stop()
        path = z.index_file(0)
        os.truncate(path, 29 + 42 * 25 + 17)
        z.start()
        c = self.client(z)
        for i, v in enumerate(values):
            self.assertEqual(c.cmd("GET", zdbtest.le64(i)), None if i == 7 else v, "id %d" % i)
        self.assertEqual(c.cmd("SET", "", "next"), zdbtest.le64(60))
        c.close()
        z.restart()
        c = self.client(z)
        self.assertEqual(c.cmd("GET", zdbtest.le64(60)), b"next")
        self.assertEqual(c.cmd("GET", zdbtest.le64(59)), values[59])

    def test_data_entry_without_index_entry(self):
        # crash between the data append and the index append: the data entry is
        # whole, its index entry missing; 0-db orphans it, zdb must index it again
        z = self.new_zdb()
        model = self.populate(z)
        z.start()
        c = z.client()
        self.assertEqual(c.cmd("SET", "orphan", "whole in data"), b"orphan")
        c.close()
        z.stop()
        idx = self.last_index(z)
        os.truncate(idx, os.path.getsize(idx) - (34 + len("orphan")))
        z.start()
        c = self.client(z)
        self.assertEqual(c.cmd("GET", "orphan"), b"whole in data")
        model.verify(self, c, check_size=False)
        self.assertEqual(c.cmd("SET", "next", "x"), b"next")
        c.close()
        z.restart()
        c = self.client(z)
        self.assertEqual(c.cmd("GET", "orphan"), b"whole in data")
        self.assertEqual(c.cmd("GET", "next"), b"x")
        model.verify(self, c, check_size=False)

    def test_crash_states_around_rotation(self):
        # what a kill -9 can leave while the next file pair is being created
        datasize = 512 * KiB
        states = {
            "data header only, no index": [("d", DATA_HEADER_ONLY)],
            "index header only, no data": [("i", INDEX_HEADER_ONLY)],
            "both headers only": [("i", INDEX_HEADER_ONLY), ("d", DATA_HEADER_ONLY)],
            "empty data file": [("d", b"")],
            "empty index file": [("i", b"")],
            "both empty": [("i", b""), ("d", b"")],
            "partial data header": [("i", INDEX_HEADER_ONLY), ("d", b"DAT0\x03\x00")],
            "partial index header": [("i", b"IDX0\x04"), ("d", DATA_HEADER_ONLY)],
        }
        for name, files in states.items():
            with self.subTest(state=name):
                z = self.new_zdb("--datasize", str(datasize))
                c = z.client()
                values = {}
                for i in range(8):
                    k = "rot%d" % i
                    values[k] = value_for(k, size=100 * KiB)
                    c.cmd("SET", k, values[k])
                c.close()
                z.stop()
                n = max(numbered_files(z.ns_data_dir(), "d")) + 1
                for kind, content in files:
                    path = z.index_file(n) if kind == "i" else z.data_file(n)
                    if kind == "i":
                        content = content[:24] + n.to_bytes(4, "little") + content[28:] if len(content) >= 29 else content
                    elif len(content) >= 28:
                        content = content[:24] + n.to_bytes(4, "little")
                    with open(path, "wb") as f:
                        f.write(content)
                z.start()
                c = z.client()
                for k, v in values.items():
                    self.assertEqual(c.cmd("GET", k), v, "%s: %s" % (name, k))
                more = {}
                for i in range(8, 14):
                    k = "rot%d" % i
                    more[k] = value_for(k, size=100 * KiB)
                    self.assertEqual(c.cmd("SET", k, more[k]), k.encode(), name)
                c.close()
                z.restart()
                c = z.client()
                values.update(more)
                for k, v in values.items():
                    self.assertEqual(c.cmd("GET", k), v, "%s, after restart: %s" % (name, k))
                self.assertEqual(c.cmd("DBSIZE"), len(values))
                c.close()
                z.cleanup()

    def test_index_garbage_tail(self):
        z = self.new_zdb()
        model = self.populate(z)
        with open(self.last_index(z), "ab") as f:
            f.write(random.Random(1).randbytes(50))
        self.check_recovered(z, model)

    def test_data_garbage_tail(self):
        z = self.new_zdb()
        model = self.populate(z)
        with open(z.data_file(0), "ab") as f:
            f.write(random.Random(2).randbytes(37))
        self.check_recovered(z, model)

    def test_data_tail_claims_a_long_entry(self):
        # a torn append: an entry header announcing more payload than the file holds
        z = self.new_zdb()
        model = self.populate(z)
        hdr = bytes([3]) + (5000).to_bytes(4, "little") + (0).to_bytes(4, "little") \
            + (0x12345678).to_bytes(4, "little") + b"\x00" + int(time.time()).to_bytes(4, "little")
        with open(z.data_file(0), "ab") as f:
            f.write(hdr + b"abc" + b"partial payload")
        self.check_recovered(z, model)

    def test_last_entry_torn_in_both_files(self):
        # the last SET was cut in the middle of its payload and its index entry is
        # gone: that key is lost (never fully written), everything else survives
        z = self.new_zdb()
        model = self.populate(z)
        z.start()
        c = z.client()
        c.cmd("SET", "torn", b"T" * 1000)
        c.close()
        z.stop()
        d0 = z.data_file(0)
        os.truncate(d0, os.path.getsize(d0) - 400)
        idx = self.last_index(z)
        os.truncate(idx, os.path.getsize(idx) - (34 + len("torn")))
        z.start()
        c = self.client(z)
        model.verify(self, c)
        self.assertIsNone(c.cmd("GET", "torn"))
        self.assertEqual(c.cmd("SET", "torn", "again"), b"torn")
        c.close()
        z.restart()
        c = self.client(z)
        self.assertEqual(c.cmd("GET", "torn"), b"again")
        model.verify(self, c, check_size=False)

    def test_data_entry_torn_but_indexed(self):
        # the index references an entry whose payload was cut: the server must start,
        # must not serve a short or wrong value for it, and must keep the rest
        z = self.new_zdb()
        model = self.populate(z)
        z.start()
        c = z.client()
        c.cmd("SET", "cut", b"C" * 1000)
        c.close()
        z.stop()
        d0 = z.data_file(0)
        os.truncate(d0, os.path.getsize(d0) - 300)
        z.start()
        c = self.client(z)
        model.verify(self, c, check_size=False)
        r = c.cmd("GET", "cut")
        self.assertTrue(r is None or isinstance(r, zdbtest.RespError),
                        "torn value served: %r" % (r[:20] if isinstance(r, bytes) else r,))
        self.assertEqual(c.cmd("SET", "cut", "fresh"), b"cut")
        self.assertEqual(c.cmd("GET", "cut"), b"fresh")


if __name__ == "__main__":
    zdbtest.main()
