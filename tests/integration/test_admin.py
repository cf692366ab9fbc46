#!/usr/bin/env python3
"""Administrative commands and command-line flags:
DATA RAW (every field, tombstones, -EOF, bad input at every offset), INDEX DIRTY [RESET],
RELOAD (clients keep working on the reloaded namespace, the index is rebuilt from disk),
FLUSH, MIRROR/MASTER/STOP, admin-only refusals, and the flags --dump, --rotate, --sync,
--synctime, --secure, --background and --logfile.

fsync behaviour is observed with strace attached to the server (those checks are skipped
when strace is missing or cannot attach). Every wait is bounded; no test asserts speed."""

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zdbtest  # noqa: E402
from zdbtest import RespError, ZdbTestCase, le64  # noqa: E402

BOUND = 20.0  # seconds: bound of every poll


def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return table


CRC_TABLE = _crc_table()


def crc32c(data):
    """CRC-32C as 0-db stores it: reflected 0x82F63B78, initial 0, no final xor."""
    crc = 0
    for b in data:
        crc = CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


def poll(fn, bound=BOUND, step=0.05):
    """fn() until it returns something true, at most bound seconds; returns its last value."""
    deadline = time.monotonic() + bound
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def nsinfo(client, ns="default"):
    return zdbtest.info_dict(client.cmd("NSINFO", ns))


class Strace:
    """strace attached to a running process, counting fsync/fdatasync calls."""

    def __init__(self, test, pid, tmpdir):
        if not shutil.which("strace"):
            test.skipTest("strace not installed")
        self.path = os.path.join(tmpdir, "strace-%d.txt" % time.monotonic_ns())
        self.proc = subprocess.Popen(["strace", "-f", "-e", "trace=fsync,fdatasync", "-o", self.path,
                                      "-p", str(pid)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + BOUND
        err = b""
        while b"attached" not in err:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                test.skipTest("strace cannot attach: %r" % err)
            r, _, _ = select.select([self.proc.stderr], [], [], left)
            if r:
                chunk = os.read(self.proc.stderr.fileno(), 4096)
                if not chunk:
                    continue
                err += chunk

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # detaches, the server goes on
            try:
                self.proc.wait(timeout=BOUND)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=BOUND)
        self.proc.stderr.close()

    def syncs(self):
        """fsync/fdatasync calls seen so far."""
        try:
            with open(self.path) as f:
                return sum(1 for line in f if re.search(r"\b(fsync|fdatasync)\(", line))
        except FileNotFoundError:
            return 0


class DataRawTest(ZdbTestCase):
    def setUp(self):
        self.z = self.new_zdb()
        self.c = self.client(self.z)

    def test_entries(self):
        self.assertEqual(self.c.cmd("SET", "k1", "hello", "1111"), b"k1")
        self.assertEqual(self.c.cmd("SET", "k2", "", "2222"), b"k2")
        self.assertEqual(self.c.cmd("DEL", "k1", "3333"), "OK")
        off1 = 28
        off2 = off1 + 18 + 2 + 5
        off3 = off2 + 18 + 2
        end = off3 + 18 + 2
        self.assertEqual(self.c.cmd("DATA", "RAW", "0", str(off1)),
                         [b"k1", 0, b"0x%08x" % crc32c(b"hello"), 0, 1111, b"hello"])
        self.assertEqual(self.c.cmd("DATA", "RAW", "0", str(off2)), [b"k2", off1, b"0x00000000", 0, 2222, b""])
        # the tombstone of the DEL: deleted flag, no payload
        self.assertEqual(self.c.cmd("DATA", "RAW", "0", str(off3)), [b"k1", off2, b"0x00000000", 1, 3333, b""])
        self.assertEqual(os.path.getsize(self.z.data_file(0)), end)
        self.assertError(self.c.cmd("DATA", "RAW", "0", str(end)), "EOF")
        self.assertError(self.c.cmd("DATA", "RAW", "0", "4294967295"), "EOF")
        self.assertError(self.c.cmd("data", "raw", "0", "1000000"), "EOF")
        # the entry of a value still in the server's write batch
        replies = self.c.pipeline([("SET", "k3", "batched"), ("DATA", "RAW", "0", str(end))])
        self.assertEqual(replies[1][0], b"k3")
        self.assertEqual(replies[1][5], b"batched")
        self.assertEqual(replies[1][2], b"0x%08x" % crc32c(b"batched"))

    def test_binary_and_large(self):
        key = bytes(range(256))[:255]
        val = os.urandom(512 << 10)
        self.assertEqual(self.c.cmd("SET", key, val), key)
        r = self.c.cmd("DATA", "RAW", "0", "28")
        self.assertEqual(r[0], key)
        self.assertEqual(r[5], val)
        self.assertEqual(r[2], b"0x%08x" % crc32c(val))

    def test_other_files(self):
        self.c.cmd("SET", "a", "1")
        self.assertEqual(self.c.cmd("NSJUMP"), "OK")
        self.c.cmd("SET", "b", "22")
        self.assertEqual(self.c.cmd("DATA", "RAW", "1", "28")[0::5], [b"b", b"22"])
        self.assertEqual(self.c.cmd("DATA", "RAW", "0", "28")[0::5], [b"a", b"1"])
        self.assertError(self.c.cmd("DATA", "RAW", "2", "28"), "Data file not found")
        self.assertError(self.c.cmd("DATA", "RAW", "4294967295", "28"), "Data file not found")
        # a data file moved away (offloaded) while the server does not hold it open
        self.z.restart()
        c = self.client(self.z)
        os.rename(self.z.data_file(0), self.z.data_file(0) + ".away")
        self.assertError(c.cmd("DATA", "RAW", "0", "28"), "Data file not found")
        os.rename(self.z.data_file(0) + ".away", self.z.data_file(0))
        self.assertEqual(c.cmd("DATA", "RAW", "0", "28")[5], b"1")

    def test_bad_input(self):
        self.c.cmd("SET", "key", "value")
        self.c.cmd("SET", "key", "other value")
        self.assertError(self.c.cmd("DATA"), "Missing arguments")
        self.assertError(self.c.cmd("DATA", "RAW"), "Unexpected arguments")
        self.assertError(self.c.cmd("DATA", "RAW", "0"), "Unexpected arguments")
        self.assertError(self.c.cmd("DATA", "RAW", "0", "28", "1"), "Unexpected arguments")
        self.assertError(self.c.cmd("DATA", "COOKED", "0", "28"), "Unknown DATA subcommand")
        self.assertError(self.c.cmd("DATA", "", "0", "28"), "Invalid argument")
        self.assertError(self.c.cmd("DATA", "RAW", "", "28"), "Invalid argument")
        for bad in ("x", "-1", "1.5", "0x1", " 1", "4294967296", "99999999999999999999999"):
            self.assertError(self.c.cmd("DATA", "RAW", bad, "28"), "Invalid file id")
            self.assertError(self.c.cmd("DATA", "RAW", "0", bad), "Invalid offset")
        for off in ("0", "1", "27"):
            self.assertError(self.c.cmd("DATA", "RAW", "0", off), "Invalid offset")
        # every offset of the file: an entry (at entry boundaries) or an error, nothing else
        size = os.path.getsize(self.z.data_file(0))
        starts = {28, 28 + 18 + 3 + 5}
        for off in range(0, size + 3):
            r = self.c.cmd("DATA", "RAW", "0", str(off))
            if off in starts:
                self.assertIsInstance(r, list)
                self.assertEqual(r[0], b"key")
            elif isinstance(r, list):
                self.assertEqual(len(r), 6)  # bytes that happen to decode: still bounded
            else:
                self.assertIsInstance(r, RespError)
        self.assertEqual(self.c.cmd("GET", "key"), b"other value")

    def test_frozen(self):
        self.c.cmd("SET", "a", "1")
        self.assertEqual(self.c.cmd("NSSET", "default", "freeze", "1"), "OK")
        self.assertError(self.c.cmd("DATA", "RAW", "0", "28"), "Namespace is temporarily frozen (read-write disabled)")


class IndexDirtyTest(ZdbTestCase):
    def test_dirty_list(self):
        z = self.new_zdb()
        c = self.client(z)
        self.assertEqual(c.cmd("INDEX", "DIRTY"), [])
        c.cmd("SET", "a", "1")
        self.assertEqual(c.cmd("INDEX", "DIRTY"), [])  # appends only
        c.cmd("SET", "a", "2")  # flags the old entry in place
        self.assertEqual(c.cmd("INDEX", "DIRTY"), [0])
        self.assertEqual(c.cmd("INDEX", "DIRTY", "RESET"), "OK")
        self.assertEqual(c.cmd("INDEX", "DIRTY"), [])
        for f in (1, 2, 3):
            self.assertEqual(c.cmd("NSJUMP"), "OK")
            c.cmd("SET", "k%d" % f, "x")
        c.cmd("DEL", "k3")
        c.cmd("SET", "k1", "y")
        c.cmd("SET", "a", "3")
        self.assertEqual(c.cmd("index", "dirty"), [0, 1, 3])
        self.assertEqual(c.cmd("INDEX", "DIRTY", "reset"), "OK")
        self.assertEqual(c.cmd("INDEX", "DIRTY"), [])
        # per namespace
        c.cmd("NSNEW", "other")
        c.cmd("SELECT", "other")
        c.cmd("SET", "o", "1")
        c.cmd("SET", "o", "2")
        self.assertEqual(c.cmd("INDEX", "DIRTY"), [0])
        c.cmd("SELECT", "default")
        self.assertEqual(c.cmd("INDEX", "DIRTY"), [])

    def test_errors(self):
        z = self.new_zdb()
        c = self.client(z)
        self.assertError(c.cmd("INDEX"), "Missing arguments")
        self.assertError(c.cmd("INDEX", "CLEAN"), "Unknown INDEX subcommand")
        self.assertError(c.cmd("INDEX", ""), "Invalid argument")
        self.assertError(c.cmd("INDEX", "DIRTY", "NOW"), "Unknown INDEX DIRTY subcommand")
        self.assertError(c.cmd("INDEX", "DIRTY", "RESET", "x"), "Unexpected arguments")

    def test_seq_update(self):
        z = self.new_zdb("--mode", "seq")
        c = self.client(z)
        c.cmd("SET", "", "a")
        self.assertEqual(c.cmd("NSJUMP"), "OK")
        c.cmd("SET", le64(0), "b")  # rewrites slot 0 of i0
        self.assertEqual(c.cmd("INDEX", "DIRTY"), [0])


class AdminOnlyTest(ZdbTestCase):
    def test_refused_without_auth(self):
        z = self.new_zdb("--admin", "secret")
        c = self.client(z)
        for args in (("DATA", "RAW", "0", "28"), ("INDEX", "DIRTY"), ("RELOAD", "default"), ("MIRROR",),
                     ("MASTER",)):
            self.assertError(c.cmd(*args), "Permission denied")
        self.assertEqual(c.cmd("AUTH", "secret"), "OK")
        self.assertEqual(c.cmd("INDEX", "DIRTY"), [])
        self.assertEqual(c.cmd("RELOAD", "default"), "OK")
        self.assertError(c.cmd("DATA", "RAW", "0", "28"), "EOF")
        self.assertEqual(zdbtest.info_dict(c.cmd("INFO"))["commands_unauthorized"], "5")

    def test_not_supported(self):
        z = self.new_zdb()
        c = self.client(z)
        self.assertError(c.cmd("MIRROR"), "Command not supported: replication (MIRROR) is not available")
        self.assertError(c.cmd("MASTER"), "Command not supported: replication (MASTER) is not available")
        self.assertError(c.cmd("STOP"), "Unauthorized")
        self.assertEqual(c.cmd("PING"), "PONG")


class ReloadTest(ZdbTestCase):
    def setUp(self):
        self.z = self.new_zdb()
        self.a = self.client(self.z)
        self.b = self.client(self.z)

    def test_clients_keep_working(self):
        self.assertEqual(self.b.cmd("NSNEW", "r1"), "OK")
        self.assertEqual(self.a.cmd("SELECT", "r1"), "OK")
        for i in range(20):
            self.a.cmd("SET", "k%d" % i, "v%d" % i)
        self.assertEqual(self.b.cmd("NSSET", "r1", "lock", "1"), "OK")
        self.assertEqual(self.b.cmd("RELOAD", "r1"), "OK")
        self.assertEqual(self.a.cmd("DBSIZE"), 20)
        self.assertEqual(self.a.cmd("GET", "k7"), b"v7")
        # runtime state survives the reload
        self.assertError(self.a.cmd("SET", "x", "y"), "Namespace is temporarily locked (read-only)")
        self.assertEqual(self.b.cmd("NSSET", "r1", "lock", "0"), "OK")
        self.assertEqual(self.a.cmd("SET", "k20", "v20"), b"k20")
        self.assertEqual(self.a.cmd("DBSIZE"), 21)
        self.assertEqual(nsinfo(self.b, "r1")["entries"], "21")
        # the reloading client itself, on its own namespace
        self.assertEqual(self.a.cmd("RELOAD", "r1"), "OK")
        self.assertEqual(self.a.cmd("GET", "k20"), b"v20")
        self.assertEqual(self.b.cmd("SELECT", "r1"), "OK")
        self.assertEqual(self.b.cmd("GET", "k0"), b"v0")
        self.assertIn(b"r1", self.b.cmd("NSLIST"))

    def test_rebuilds_from_disk(self):
        self.assertEqual(self.b.cmd("NSNEW", "r2"), "OK")
        self.assertEqual(self.a.cmd("SELECT", "r2"), "OK")
        for i in range(10):
            self.a.cmd("SET", "k%d" % i, "v%d" % i)
        self.a.cmd("DEL", "k3")
        # the index files disappear under the running server: RELOAD reads the disk again
        # and rebuilds them from the data files
        idir = self.z.ns_index_dir("r2")
        for name in os.listdir(idir):
            if name.startswith("i"):
                os.unlink(os.path.join(idir, name))
        self.assertEqual(self.b.cmd("RELOAD", "r2"), "OK")
        self.assertTrue(os.path.exists(self.z.index_file(0, "r2")))
        self.assertEqual(self.a.cmd("DBSIZE"), 9)
        self.assertEqual(self.a.cmd("GET", "k9"), b"v9")
        self.assertIsNone(self.a.cmd("GET", "k3"))

    def test_pipelined_writes_reach_disk_first(self):
        replies = self.a.pipeline([("SET", "x", "1"), ("RELOAD", "default"), ("GET", "x"), ("DBSIZE",)])
        self.assertEqual(replies, [b"x", "OK", b"1", 1])

    def test_errors(self):
        self.assertError(self.a.cmd("RELOAD"), "Unexpected arguments")
        self.assertError(self.a.cmd("RELOAD", "a", "b"), "Unexpected arguments")
        self.assertError(self.a.cmd("RELOAD", ""), "Invalid argument")
        self.assertError(self.a.cmd("RELOAD", "nope"), "Namespace not found")
        self.assertError(self.a.cmd("RELOAD", "n" * 129), "Namespace too long")
        self.assertEqual(self.a.cmd("PING"), "PONG")


class FlushTest(ZdbTestCase):
    def test_flush(self):
        z = self.new_zdb()
        c = self.client(z)
        c.cmd("SET", "d", "1")
        self.assertError(c.cmd("FLUSH"), "Flushing public namespace denied")
        self.assertEqual(c.cmd("GET", "d"), b"1")
        c.cmd("NSNEW", "priv")
        c.cmd("NSSET", "priv", "public", "0")
        c.cmd("SELECT", "priv")
        self.assertError(c.cmd("FLUSH"), "Flushing public namespace denied")  # no password yet
        c.cmd("NSSET", "priv", "password", "pw")
        self.assertEqual(c.cmd("SELECT", "priv", "pw"), "OK")
        for i in range(5):
            c.cmd("SET", "k%d" % i, "v")
        c.cmd("NSJUMP")
        c.cmd("SET", "later", "v")
        self.assertEqual(c.cmd("FLUSH"), "OK")
        self.assertEqual(c.cmd("DBSIZE"), 0)
        self.assertIsNone(c.cmd("GET", "k1"))
        self.assertError(c.cmd("SCAN"), "No more data")
        self.assertFalse(os.path.exists(z.data_file(1, "priv")))
        self.assertEqual(os.path.getsize(z.data_file(0, "priv")), 28)
        self.assertEqual(c.cmd("SET", "again", "v"), b"again")
        z.restart()
        c = self.client(z)
        self.assertEqual(c.cmd("SELECT", "priv", "pw"), "OK")
        self.assertEqual(c.cmd("DBSIZE"), 1)
        self.assertEqual(c.cmd("SELECT", "default"), "OK")
        self.assertEqual(c.cmd("GET", "d"), b"1")


class DumpTest(ZdbTestCase):
    def dump(self, z, *extra):
        p = subprocess.run([z.binary, "--dump", "--index", z.index_dir, "--data", z.data_dir] + list(extra),
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")

    def test_dump(self):
        z = self.new_zdb()
        c = self.client(z)
        c.cmd("SET", "alive", "1", "1000")
        c.cmd("SET", "gone", "22")
        c.cmd("SET", b"bin\x00\xff\"", "333")
        c.cmd("DEL", "gone")
        c.cmd("SET", "alive", "4444")
        c.cmd("NSNEW", "sq")
        c.cmd("NSSET", "sq", "mode", "seq")
        c.cmd("SELECT", "sq")
        c.cmd("SET", "", "first")
        c.cmd("SET", "", "second")
        c.cmd("SET", le64(0), "first again")
        # refused while the server holds the directories
        rc, out, err = self.dump(z)
        self.assertEqual(rc, 1)
        self.assertIn("locked", err)
        z.stop()
        rc, out, err = self.dump(z)
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertIn("# namespace default: mode user, 2 live keys", out)
        self.assertIn("# namespace default: 4 entries, 2 live", out)
        self.assertIn("# namespace sq: 3 entries, 2 live", out)
        default = [l for l in lines if l.startswith("i0+") and ("key=" in l)]
        self.assertEqual(len(default), 4)
        self.assertRegex(default[0], r'^i0\+29 deleted key="alive" length=1 crc=0x%08x data=d0\+28 time=1000 '
                         % crc32c(b"1"))
        self.assertRegex(default[1], r'^i0\+68 deleted key="gone" length=2 ')
        self.assertRegex(default[2], r'^i0\+\d+ live +key="bin\\x00\\xff\\"" length=3 ')
        self.assertRegex(default[3], r'^i0\+\d+ live +key="alive" length=4 .* previous-version=i0\+29$')
        seq = [l for l in lines if "id=" in l]
        self.assertEqual(len(seq), 3)
        self.assertRegex(seq[0], r"^i0\+29 live +id=0 length=11 ")
        self.assertRegex(seq[1], r"^i0\+71 live +id=1 length=6 ")
        self.assertRegex(seq[2], r"^i0\+113 deleted id=0 length=5 ")
        # the dump changed nothing: the server starts and serves the same data
        z.start()
        c = self.client(z)
        self.assertEqual(c.cmd("GET", "alive"), b"4444")

    def test_empty_store(self):
        z = self.new_zdb(start=False)
        rc, out, err = self.dump(z)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "# namespace default: mode user, 0 live keys, 0 payload bytes, active files i0/d0\n"
                              "# namespace default: 0 entries, 0 live\n")


class FlagsTest(ZdbTestCase):
    def test_rotate(self):
        z = self.new_zdb("--rotate", "1")
        c = self.client(z)
        c.cmd("SET", "a", "1")
        rotated = poll(lambda: nsinfo(c)["data_current_id"] != "0")
        self.assertTrue(rotated, "no rotation within %ss" % BOUND)
        self.assertTrue(os.path.exists(z.index_file(1)))
        c.cmd("SET", "b", "2")
        self.assertTrue(poll(lambda: int(nsinfo(c)["data_current_id"]) >= 2))
        self.assertEqual(c.cmd("GET", "a"), b"1")
        self.assertEqual(c.cmd("GET", "b"), b"2")

    def test_rotate_invalid(self):
        z = self.new_zdb(start=False)
        for bad in ("x", "-1", ""):
            rc, out = z.start_expect_failure(args=["--rotate", bad])
            self.assertEqual(rc, 1)
            self.assertIn("rotate", out)

    def test_sync(self):
        plain = self.new_zdb()
        c = self.client(plain)
        st = Strace(self, plain.proc.pid, plain.tmpdir)
        try:
            for i in range(5):
                c.cmd("SET", "k%d" % i, "v")
            c.cmd("NSJUMP")
            c.cmd("PING")
        finally:
            st.stop()
        self.assertEqual(st.syncs(), 0)

        z = self.new_zdb("--sync")
        c = self.client(z)
        st = Strace(self, z.proc.pid, z.tmpdir)
        try:
            for i in range(5):
                self.assertEqual(c.cmd("SET", "k%d" % i, "v"), b"k%d" % i)
            c.cmd("PING")
        finally:
            st.stop()
        self.assertGreaterEqual(st.syncs(), 5)  # before each reply: data and index
        z.restart(kill=True)
        self.assertEqual(self.client(z).cmd("GET", "k4"), b"v")

    def test_synctime(self):
        z = self.new_zdb("--synctime", "1")
        c = self.client(z)
        st = Strace(self, z.proc.pid, z.tmpdir)
        try:
            c.cmd("SET", "a", "1")
            synced = poll(lambda: st.syncs() > 0)
        finally:
            st.stop()
        self.assertTrue(synced, "no fsync within %ss of a write with --synctime 1" % BOUND)

    def test_synctime_invalid(self):
        z = self.new_zdb(start=False)
        rc, out = z.start_expect_failure(args=["--synctime", "soon"])
        self.assertEqual(rc, 1)
        self.assertIn("synctime", out)

    def test_secure(self):
        z = self.new_zdb("--secure")
        c = self.client(z)
        st = Strace(self, z.proc.pid, z.tmpdir)
        try:
            c.cmd("SET", "a", "1")
            c.cmd("PING")
            before = st.syncs()
            self.assertEqual(c.cmd("NSJUMP"), "OK")  # the file is synced before leaving it
            c.cmd("PING")
            after = st.syncs()
        finally:
            st.stop()
        self.assertEqual(before, 0)
        self.assertGreaterEqual(after, 2)  # data and index of the file left
        self.assertEqual(c.cmd("GET", "a"), b"1")

    def test_logfile(self):
        z = self.new_zdb(start=False)
        log = os.path.join(z.tmpdir, "server.log")
        z.start(args=["--logfile", log])
        self.assertEqual(self.client(z).cmd("PING"), "PONG")
        with open(log) as f:
            text = f.read()
        self.assertRegex(text, r"listening on tcp://127\.0\.0\.1:%d, .* pid %d" % (z.port, z.proc.pid))
        self.assertEqual(z.stop(), 128 + signal.SIGTERM)
        with open(log) as f:
            self.assertIn("stopping (signal %d)" % signal.SIGTERM, f.read())
        # appended, not truncated, by the next run
        z.start(args=["--logfile", log])
        z.stop()
        with open(log) as f:
            self.assertEqual(len(re.findall(r"listening on", f.read())), 2)
        rc, out = z.start_expect_failure(args=["--logfile", os.path.join(z.tmpdir, "no", "such", "dir", "x.log")])
        self.assertEqual(rc, 1)
        self.assertIn("log file", out)

    def test_background(self):
        z = self.new_zdb(start=False)
        log = os.path.join(z.tmpdir, "bg.log")
        port = zdbtest.free_port()
        argv = [z.binary, "--listen", "127.0.0.1", "--port", str(port), "--data", z.data_dir, "--index",
                z.index_dir, "--background", "--logfile", log]
        pid = [None]

        def kill_leftover():
            if pid[0] and os.path.exists("/proc/%d" % pid[0]):
                try:
                    os.kill(pid[0], signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.addCleanup(kill_leftover)
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=120, cwd=z.tmpdir)
        self.assertEqual(p.returncode, 0, p.stderr)  # the foreground process returns at once

        def daemon_pid():
            try:
                with open(log) as f:
                    m = re.search(r"listening on .* pid (\d+)", f.read())
            except FileNotFoundError:
                return None
            return int(m.group(1)) if m else None
        pid[0] = poll(daemon_pid)
        self.assertIsNotNone(pid[0], "no start line in the log")
        self.assertNotEqual(pid[0], os.getpid())
        c = zdbtest.Client(port=port)
        self.addCleanup(c.close)
        self.assertEqual(c.cmd("SET", "bg", "1"), b"bg")
        self.assertEqual(c.cmd("GET", "bg"), b"1")
        os.kill(pid[0], signal.SIGTERM)

        def gone():
            try:
                with open("/proc/%d/stat" % pid[0]) as f:
                    return f.read().split(") ")[1][0] == "Z"
            except (FileNotFoundError, ProcessLookupError, IndexError):
                return True
        self.assertTrue(poll(gone), "the background server did not stop on SIGTERM")
        with open(log) as f:
            self.assertIn("stopping (signal %d)" % signal.SIGTERM, f.read())
        # its data is there for the next (foreground) run
        z.start()
        self.assertEqual(self.client(z).cmd("GET", "bg"), b"1")


if __name__ == "__main__":
    zdbtest.main()
