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

    def test_disk_that_fails_and_comes_back(self):
        """Every read, write and fsync of zdb's files fails for a while (the roll back of the
        refused write cannot even reload the namespace), then the disk is back: writes
        resume without a restart, and nothing refused shows up."""
        z, _ = self.start_with_shim("--sync")
        faults = z.env["QSFS_FAULT_DIR"]
        z.stop()
        z.env["QSFS_FAULT_UNDER"] = z.tmpdir + "/"
        z.start()
        c = self.client(z)
        self.assertEqual(c.cmd("NSNEW", "s"), "OK")
        self.assertEqual(c.cmd("NSSET", "s", "mode", "seq"), "OK")
        self.assertEqual(c.cmd("SELECT", "s"), "OK")
        first = c.cmd("SET", b"", b"before")
        self.assertEqual(first, (0).to_bytes(8, "little"))
        arm = os.path.join(faults, "io-fail")
        open(arm, "w").close()
        for _ in range(3):
            self.assertIsInstance(c.cmd("SET", b"", b"during"), RespError)
        os.unlink(arm)
        self.assertEqual(c.cmd("SET", b"", b"after"), (1).to_bytes(8, "little"))
        self.assertEqual(c.cmd("GET", first), b"before")
        self.assertIn(b"writes resume", open(z.log_path, "rb").read())
        c.close()
        z.stop()
        z.env = None
        z.start()
        c = self.client(z)
        self.assertEqual(c.cmd("SELECT", "s"), "OK")
        self.assertEqual(c.cmd("GET", first), b"before")
        self.assertEqual(c.cmd("GET", (1).to_bytes(8, "little")), b"after")
        self.assertEqual(c.cmd("EXISTS", (2).to_bytes(8, "little")), 0)

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


class DescriptorLimitTest(ZdbTestCase):
    def test_open_file_limit(self):
        """With 64 descriptors and 100 clients trying to connect, zdb keeps serving the
        connected ones, refuses the others without spinning on accept, and its log stays
        bounded; when clients leave, new ones are accepted again."""
        import resource
        import socket
        import time
        z = self.new_zdb(start=False)
        z.preexec = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        z.start()
        first = self.client(z)
        self.assertEqual(first.cmd("SET", b"k", b"v"), b"k")
        socks = []
        try:
            for i in range(100):
                s = socket.create_connection(("127.0.0.1", z.port), timeout=5)
                socks.append(s)
            time.sleep(2)
            self.assertEqual(first.cmd("GET", b"k"), b"v")
            self.assertEqual(first.cmd("PING"), "PONG")
        finally:
            for s in socks:
                s.close()
        log = z.log_text(limit=1 << 20)
        self.assertLessEqual(log.count("accept:"), 3, log[-2000:])
        self.assertIn("Too many open files", log)  # (a spinning accept logs millions)
        # a connection after the others left is served
        deadline = time.monotonic() + 10
        while True:
            try:
                c = z.client(timeout=2)
                if c.cmd("PING") == "PONG":
                    c.close()
                    break
                c.close()
            except (OSError, zdbtest.ConnectionClosed):
                pass
            self.assertLess(time.monotonic(), deadline, "no new connection accepted")
            time.sleep(0.1)


class PartialRequestTest(ZdbTestCase):
    def test_memory_of_half_sent_requests_is_bounded(self):
        """Clients that send most of an 8 MiB SET and stop: past --input-limit they are
        disconnected with an error; the server keeps its memory and serves the others."""
        import socket
        import time
        z = self.new_zdb("--input-limit", "32M")
        other = self.client(z)
        head = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$8388608\r\n"
        body = b"x" * (8 * MiB - 10)
        socks, refused = [], 0
        try:
            for i in range(16):
                s = socket.create_connection(("127.0.0.1", z.port), timeout=2)
                socks.append(s)
                try:
                    s.sendall(head + body)
                except OSError:
                    pass  # closed by the server while sending
            time.sleep(1)
            for s in socks:
                s.settimeout(0.5)  # the refused ones have their error waiting
                try:
                    got = s.recv(200)
                except OSError:
                    got = b""
                if got.startswith(b"-Server input memory limit reached"):
                    refused += 1
            self.assertEqual(other.cmd("PING"), "PONG")
            with open("/proc/%d/status" % z.proc.pid) as f:
                rss = [int(l.split()[1]) for l in f if l.startswith("VmRSS:")][0] * 1024
        finally:
            for s in socks:
                s.close()
        self.assertGreaterEqual(refused, 10, "only %d of 16 clients were refused" % refused)
        with open(z.binary, "rb") as f:
            asan = b"__asan_init" in f.read()  # ASan keeps freed memory in quarantine
        if not asan:
            self.assertLess(rss, 96 * MiB, "zdb holds %d MiB for half-sent requests" % (rss // MiB))
        self.assertIn("--input-limit", z.log_text())

    def test_idle_half_sent_request_times_out(self):
        import socket
        import time
        z = self.new_zdb("--input-timeout", "1")
        s = socket.create_connection(("127.0.0.1", z.port), timeout=10)
        self.addCleanup(s.close)
        s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nonly a part")
        got = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            chunk = s.recv(200)
            if not chunk:
                break
            got += chunk
        self.assertTrue(got.startswith(b"-Request not completed within 1 seconds"), got)
        c = self.client(z)
        self.assertEqual(c.cmd("EXISTS", b"k"), 0)


DAMAGED = "Internal Error: stored value is damaged (CRC mismatch)"


class DamagedValueTest(ZdbTestCase):
    def flip(self, path, needle):
        with open(path, "r+b") as f:
            data = f.read()
            at = data.index(needle) + len(needle) // 2
            f.seek(at)
            f.write(bytes([data[at] ^ 0x20]))
        return at

    def test_damaged_value_in_active_file(self):
        z = self.new_zdb()
        c = self.client(z)
        vals = {b"k%d" % i: os.urandom(1000) for i in range(3)}
        for k, v in vals.items():
            self.assertEqual(c.cmd("SET", k, v), k)
        c.close()
        z.stop()
        self.flip(z.data_file(0), vals[b"k1"])
        z.start()
        self.assertRegex(z.log_text(), r"damaged value in d0 at [0-9]+, key 'k1'")
        c = self.client(z)
        self.assertEqual(c.cmd("GET", b"k1"), RespError(DAMAGED))
        self.assertRegex(z.log_text(), r"key 'k1': stored value damaged in d0 at [0-9]+")
        self.assertEqual(c.cmd("CHECK", b"k1"), 0)
        self.assertEqual(c.cmd("GET", b"k0"), vals[b"k0"])
        self.assertEqual(c.cmd("GET", b"k2"), vals[b"k2"])
        self.assertEqual(c.cmd("CHECK", b"k2"), 1)
        # a new value for the damaged key replaces it
        self.assertEqual(c.cmd("SET", b"k1", b"fresh"), b"k1")
        self.assertEqual(c.cmd("GET", b"k1"), b"fresh")

    def test_damaged_value_in_closed_file(self):
        z = self.new_zdb("--datasize", "512K")
        c = self.client(z)
        first = os.urandom(4000)
        self.assertEqual(c.cmd("SET", b"first", first), b"first")
        for i in range(200):
            self.assertEqual(c.cmd("SET", b"fill%d" % i, os.urandom(4000)), b"fill%d" % i)
        self.assertTrue(os.path.exists(z.data_file(1)))
        c.close()
        z.stop()
        self.flip(z.data_file(0), first)
        z.start()
        c = self.client(z)
        self.assertEqual(c.cmd("GET", b"first"), RespError(DAMAGED))
        self.assertEqual(c.cmd("CHECK", b"first"), 0)
        self.assertIn("damaged value in d0", z.log_text())


class FileCutWhileRunningTest(ZdbTestCase):
    def test_active_file_cut_behind_zdb(self):
        """The active data file cut to half while zdb runs: the next write is refused (it
        would land after a hole that recovery cuts), zdb loads the namespace again from
        what the file holds, and every write it acknowledges from then on survives."""
        z = self.new_zdb("--sync")
        c = self.client(z)
        vals = {}
        for i in range(20):
            k = b"k%d" % i
            vals[k] = os.urandom(1000)
            self.assertEqual(c.cmd("SET", k, vals[k]), k)
        path = z.data_file(0)
        os.truncate(path, os.path.getsize(path) // 2)
        r = c.cmd("SET", b"new", b"v" * 100)
        self.assertIsInstance(r, RespError)
        self.assertIn("changed behind zdb's back", z.log_text())
        acked = {}
        for i in range(5):
            k = b"after%d" % i
            acked[k] = os.urandom(500)
            self.assertEqual(c.cmd("SET", k, acked[k]), k)
        survivors = {k: v for k, v in vals.items() if c.cmd("GET", k) == v}
        self.assertTrue(0 < len(survivors) < len(vals))
        for k in vals:
            if k not in survivors:
                self.assertIsNone(c.cmd("GET", k))  # gone, not an error or a wrong value
        c.close()
        z.stop()
        z.start()
        c = self.client(z)
        for k, v in list(acked.items()) + list(survivors.items()):
            self.assertEqual(c.cmd("GET", k), v, k)
        self.assertEqual(c.cmd("EXISTS", b"new"), 0)


class IndexSizeTest(ZdbTestCase):
    def info(self, c, ns="default"):
        text = c.cmd("NSINFO", ns).decode()
        return dict(l.split(": ", 1) for l in text.splitlines() if ": " in l)

    def test_index_size_as_0db_reports_it(self):
        """index_size_bytes is 0-db v2.0.7's figure: per live key its 64-byte in-memory
        entry plus the key (72 bytes per live id in sequential mode), also after a restart."""
        z = self.new_zdb()
        c = self.client(z)
        for k in (b"k00", b"k01", b"k02", b"longer-key"):
            self.assertEqual(c.cmd("SET", k, b"v" * 100), k)
        self.assertEqual(c.cmd("SET", b"k00", b"new"), b"k00")
        self.assertEqual(c.cmd("DEL", b"k01"), "OK")
        want = 3 * 64 + 3 + 3 + 10
        self.assertEqual(int(self.info(c)["index_size_bytes"]), want)
        self.assertEqual(self.info(c)["index_size_kb"], "%.2f" % (want / 1024))
        self.assertEqual(c.cmd("NSNEW", "seq"), "OK")
        self.assertEqual(c.cmd("NSSET", "seq", "mode", "seq"), "OK")
        self.assertEqual(c.cmd("SELECT", "seq"), "OK")
        for i in range(3):
            c.cmd("SET", b"", b"x")
        self.assertEqual(int(self.info(c, "seq")["index_size_bytes"]), 3 * 72)
        c.close()
        z.stop()
        z.start()
        c = self.client(z)
        self.assertEqual(int(self.info(c)["index_size_bytes"]), want)
        self.assertEqual(int(self.info(c, "seq")["index_size_bytes"]), 3 * 72)


class PowerCutTest(ZdbTestCase):
    """--sync under a simulated power cut: after kill -9, every file and directory entry is
    put back to what its last successful sync made durable (powercut.py), then zdb starts
    on that. Every acknowledged write must be there, across rotations and a new namespace."""

    def test_acknowledged_writes_survive_power_cut(self):
        shim = shim_path()
        if not os.path.exists(shim):
            self.skipTest("fault shim not built: %s" % shim)
        import powercut
        import random
        import threading
        rnd = random.Random(7)
        shadow = tempfile.mkdtemp(prefix="zdbshadow-")
        self.addCleanup(shutil.rmtree, shadow, True)
        z = self.new_zdb("--sync", "--datasize", "524288", start=False)
        env = dict(os.environ)
        env["LD_PRELOAD"] = shim
        env["QSFS_POWERCUT_ROOT"] = z.tmpdir + "/"
        env["QSFS_POWERCUT_SHADOW"] = shadow
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
        z.env = env
        # what must be there: (ns, key) -> value; in flight when killed: either value
        model, maybe = {}, {}
        for rnd_no in range(3):
            powercut.snapshot(z.tmpdir, shadow)  # what a clean stop left is durable
            z.start()
            c = self.client(z)
            if rnd_no == 0:
                self.assertEqual(c.cmd("NSNEW", "second"), "OK")
            stop = threading.Event()
            killer = threading.Timer(0.4 + rnd.random() * 0.4, lambda: (z.kill9(), stop.set()))
            killer.start()
            try:
                for batch in range(10000):
                    if stop.is_set():
                        break
                    ns = rnd.choice(["default", "second"])
                    if c.cmd("SELECT", ns) != "OK":
                        break
                    cmds = []
                    for i in range(rnd.randint(1, 20)):
                        k = b"r%dk%d" % (rnd_no, rnd.randint(0, 300))
                        if rnd.random() < 0.15 and (ns, k) in model and model[(ns, k)] is not None:
                            cmds.append(("DEL", k))
                        else:
                            cmds.append(("SET", k, rnd.randbytes(rnd.randint(100, 20000))))
                    for cmd in cmds:
                        maybe.setdefault((ns, cmd[1]), set()).add(cmd[2] if cmd[0] == "SET" else None)
                    c.send_raw(b"".join(zdbtest.encode_command(*x) for x in cmds))
                    for cmd in cmds:
                        r = c.read_reply(timeout=10)
                        key = (ns, cmd[1])
                        if cmd[0] == "SET" and r == cmd[1]:
                            model[key] = cmd[2]
                        elif cmd[0] == "DEL" and r == "OK":
                            model[key] = None
                        maybe[key] = set()
            except (OSError, zdbtest.ConnectionClosed):
                pass
            finally:
                killer.cancel()
                stop.wait(5)
            c.close()
            if z.running():
                z.kill9()
            kept, dropped = powercut.rebuild(z.tmpdir, shadow)
            z.env = None
            z.start()
            c = self.client(z)
            lost = []
            for (ns, k), v in sorted(model.items()):
                self.assertEqual(c.cmd("SELECT", ns), "OK")
                got = c.cmd("GET", k)
                if got != v and got not in maybe.get((ns, k), set()):
                    lost.append((ns, k, None if v is None else len(v), got if not isinstance(got, bytes) else len(got)))
            self.assertEqual(lost, [], "after power cut %d (%d files kept, %d names dropped)" % (rnd_no, kept, dropped))
            for (ns, k), vs in maybe.items():
                if vs:  # in flight: whatever came back is now the acknowledged state
                    self.assertEqual(c.cmd("SELECT", ns), "OK")
                    got = c.cmd("GET", k)
                    model[(ns, k)] = got if isinstance(got, bytes) else None
            maybe = {}
            c.close()
            z.stop()
            z.env = env
        self.assertGreater(len(model), 100)


class NthIoFailureTest(ZdbTestCase):
    """The n-th write, read or fsync of zdb's files fails (EIO), for every n in turn until
    the run makes fewer calls (SQLite's way, on the disk instead of the allocator): zdb
    never crashes, a write it acknowledged is intact after a restart without the fault,
    one it refused is either absent or whole, and a failed read never reads as other
    bytes. The same with a disk that dies at the n-th call (every call from it fails), and
    with the failure during the load of an existing namespace, where a read error must not
    be taken for damage and "repaired" away."""

    def shim_env(self, n, under, log, sticky=False):
        shim = shim_path()
        if not os.path.exists(shim):
            self.skipTest("fault shim not built: %s" % shim)
        env = dict(os.environ)
        env["LD_PRELOAD"] = shim
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
        env.update(QSFS_FAULT_NTH=str(n), QSFS_FAULT_UNDER=under, QSFS_FAULT_LOG=log)
        if sticky:
            env["QSFS_FAULT_STICKY"] = "1"
        return env

    @staticmethod
    def workload():
        """(namespace, command...) in order: two namespaces (user and sequential), sets,
        overwrites, deletes, reads, and a rotation (NSJUMP)."""
        ops = [("default", "NSNEW", "u"), ("default", "NSNEW", "s"),
               ("s", "NSSET", "s", "mode", "seq")]
        for i in range(14):
            ops.append(("u", "SET", b"k%d" % (i % 6), b"%d-" % i + bytes([65 + i % 26]) * (700 * (i % 4 + 1))))
            if i % 5 == 4:
                ops.append(("u", "DEL", b"k%d" % ((i + 2) % 6)))
            if i == 7:
                ops.append(("u", "NSJUMP"))
            ops.append(("u", "GET", b"k%d" % ((i * 5) % 6)))
        for i in range(8):
            ops.append(("s", "SET", b"", b"seq-%d-" % i + b"z" * 900))
        ops.append(("s", "GET", (0).to_bytes(8, "little")))
        return ops

    def run_workload(self, c, model, maybe):
        """Runs the workload; model[(ns, key)] is what was acknowledged (None: deleted),
        maybe[(ns, key)] what a refused write may have left."""
        cur = None
        seq_next = 0
        for op in self.workload():
            ns, cmd, args = op[0], op[1], op[2:]
            if ns != cur:
                r = c.cmd("SELECT", ns)
                if r != "OK":
                    cur = None
                    continue  # the namespace was not created: its commands are skipped
                cur = ns
            if cmd == "SET" and ns == "s":
                key = seq_next.to_bytes(8, "little")
                r = c.cmd("SET", b"", args[1])
                if isinstance(r, bytes):
                    self.assertEqual(r, key)
                    model[(ns, key)] = args[1]
                    seq_next += 1
                else:
                    maybe.setdefault((ns, key), set()).add(args[1])
            elif cmd == "SET":
                r = c.cmd("SET", args[0], args[1])
                if r == args[0]:
                    model[(ns, args[0])] = args[1]
                    maybe.pop((ns, args[0]), None)
                else:
                    maybe.setdefault((ns, args[0]), set()).add(args[1])
            elif cmd == "DEL":
                r = c.cmd("DEL", args[0])
                if r == "OK":
                    model[(ns, args[0])] = None
                    maybe.pop((ns, args[0]), None)
                elif not isinstance(r, RespError):
                    self.fail("DEL %r -> %r" % (args[0], r))
                elif (ns, args[0]) in model:
                    maybe.setdefault((ns, args[0]), set()).add(None)
            elif cmd == "GET":
                r = c.cmd("GET", args[0])
                if not isinstance(r, RespError):  # an error is fine, other bytes never
                    want = model.get((ns, args[0]))
                    self.assertTrue(r == want or r in maybe.get((ns, args[0]), set()),
                                    "GET %r in %s -> %r" % (args[0], ns, r if not isinstance(r, bytes) else len(r)))
            else:
                c.cmd(cmd, *args)

    def check_model(self, c, model, maybe, what):
        lost = []
        for (ns, k), v in sorted(model.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            if c.cmd("SELECT", ns) != "OK":
                lost.append((ns, "namespace gone"))
                continue
            got = c.cmd("GET", k)
            if got != v and got not in maybe.get((ns, k), set()):
                lost.append((ns, k, None if v is None else len(v), got if not isinstance(got, bytes) else len(got)))
        self.assertEqual(lost, [], what)

    def fired(self, log):
        try:
            with open(log) as f:
                return f.read().strip()
        except OSError:
            return ""

    def one_run(self, n, sticky):
        z = self.new_zdb("--sync", "--datasize", "512K", start=False)
        log = os.path.join(z.tmpdir, "fault.log")
        z.env = self.shim_env(n, z.tmpdir + "/", log, sticky)
        model, maybe = {}, {}
        try:
            z.start()
        except zdbtest.ZdbStartError as e:  # a fresh directory whose set-up failed: said why
            self.assertIn("zdb", str(e))
            fired = self.fired(log)
            self.assertTrue(fired, "zdb refused to start without a fault: %s" % e)
            z.env = None
            z.start()
            z.stop()
            return fired
        c = z.client()
        self.run_workload(c, model, maybe)
        c.close()
        z.stop()  # fails the test on a crash or a sanitizer report
        fired = self.fired(log)
        z.env = None
        z.start()
        c = z.client()
        self.check_model(c, model, maybe, "n=%d sticky=%s: %s" % (n, sticky, fired))
        c.close()
        z.stop()
        z.cleanup()
        return fired

    def test_nth_io_call_fails(self):
        calls = 0
        for n in range(1, 2000):
            if not self.one_run(n, sticky=False):
                calls = n - 1
                break
        self.assertGreater(calls, 50)  # the workload reached its files: the fault was tried
        # a disk that dies: at a spread of points through the same run
        for n in range(1, calls + 1, max(1, calls // 12)):
            self.assertTrue(self.one_run(n, sticky=True))

    def test_nth_io_call_fails_during_load(self):
        base = self.new_zdb("--datasize", "512K")
        c = base.client()
        model, maybe = {}, {}
        self.run_workload(c, model, maybe)
        c.close()
        base.stop()
        self.assertEqual(maybe, {})
        calls = 0
        for n in range(1, 2000):
            tmp = tempfile.mkdtemp(prefix="zdbload-")
            self.addCleanup(shutil.rmtree, tmp, True)
            for sub in ("index", "data"):
                shutil.copytree(os.path.join(base.tmpdir, sub), os.path.join(tmp, sub))
            z = self.new_zdb("--datasize", "512K", start=False, tmpdir=tmp)
            log = os.path.join(tmp, "fault.log")
            z.env = self.shim_env(n, tmp + "/", log)
            started = True
            try:
                z.start()
            except zdbtest.ZdbStartError as e:
                started = False
                self.assertTrue(self.fired(log), "refused to start without a fault: %s" % e)
            if started:
                c = z.client()
                for (ns, k), v in model.items():  # the right bytes or an error
                    if c.cmd("SELECT", ns) != "OK":
                        continue
                    got = c.cmd("GET", k)
                    self.assertTrue(got == v or isinstance(got, RespError),
                                    "n=%d: %r in %s -> %r" % (n, k, ns, got if not isinstance(got, bytes) else len(got)))
                c.close()
                z.stop()
            fired = self.fired(log)
            if not fired:
                calls = n - 1
                break
            z.env = None
            z.start()
            c = z.client()
            self.check_model(c, model, {}, "load with call %d failing: %s" % (n, fired))
            c.close()
            z.stop()
            z.cleanup()
        self.assertGreater(calls, 10)


if __name__ == "__main__":
    zdbtest.main()
