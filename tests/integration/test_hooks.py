#!/usr/bin/env python3
"""zdb integration tests: hooks (`--hook EXE`, spec zdb.md section 6) and the HOOKS command.

The hook is a small Python script written into the test's temporary directory. It appends
one JSON line {"start": [event, zdbid, args...], "pid": N} when it starts and
{"end": event, "pid": N} just before it exits, so the tests can check the exact sequence of
events, their arguments, and that a blocking hook had finished before the server answered.
Its behaviour is steered by files in a control directory:
  sleep-<event>   seconds to sleep before exiting
  exit-<event>    exit status (default 0)
  missing-data: exits 0 after renaming <path>.away back to <path>, 1 when there is none.
"""

import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zdbtest  # noqa: E402
from zdbtest import RespError, Zdb, ZdbTestCase  # noqa: E402

KiB = 1024
WAIT = 20.0  # bound of every wait for a non-blocking hook (seconds)

HOOK_SCRIPT = r'''#!{python}
import json, os, sys, time
LOG = {log!r}
CTL = {ctl!r}

def log(rec):
    with open(LOG, "a") as f:
        f.write(json.dumps(rec) + "\n")

event = sys.argv[1]
log({{"start": sys.argv[1:], "pid": os.getpid()}})

def ctl(name, default):
    try:
        with open(os.path.join(CTL, name + "-" + event)) as f:
            return f.read().strip()
    except FileNotFoundError:
        return default

status = int(ctl("exit", "0"))
if event == "missing-data":
    path = sys.argv[3]
    if os.path.exists(path + ".away"):
        os.rename(path + ".away", path)
        status = 0
    else:
        status = 1
time.sleep(float(ctl("sleep", "0")))
log({{"end": event, "pid": os.getpid()}})
sys.exit(status)
'''


class HookLog:
    """The hook script, its log and its control files, in the test's temporary directory."""

    def __init__(self, tmpdir):
        self.dir = os.path.join(tmpdir, "hook")
        self.ctl = os.path.join(self.dir, "ctl")
        os.makedirs(self.ctl, exist_ok=True)
        self.log = os.path.join(self.dir, "hook.log")
        self.exe = os.path.join(self.dir, "hook.py")
        with open(self.exe, "w") as f:
            f.write(HOOK_SCRIPT.format(python=sys.executable, log=self.log, ctl=self.ctl))
        os.chmod(self.exe, 0o755)
        self.seen = 0  # records already returned by new_starts()

    def set(self, kind, event, value):
        with open(os.path.join(self.ctl, "%s-%s" % (kind, event)), "w") as f:
            f.write(str(value))

    def clear(self, kind, event):
        try:
            os.unlink(os.path.join(self.ctl, "%s-%s" % (kind, event)))
        except FileNotFoundError:
            pass

    def records(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def starts(self):
        """[event, zdbid, args...] of every hook started, in order."""
        return [r["start"] for r in self.records() if "start" in r]

    def ended(self, event):
        return any(r.get("end") == event for r in self.records())

    def pid_of(self, event):
        for r in self.records():
            if "start" in r and r["start"][0] == event:
                return r["pid"]
        return None

    def wait_starts(self, n, timeout=WAIT):
        """Waits (bounded) until at least n hooks started; returns starts()."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.starts()
            if len(s) >= n or time.monotonic() > deadline:
                return s
            time.sleep(0.02)

    def wait_end(self, event, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while not self.ended(event) and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.ended(event)

    def new_starts(self, n, timeout=WAIT):
        """The next n hook starts after the ones already returned (waits for them)."""
        s = self.wait_starts(self.seen + n, timeout)
        out = s[self.seen:]
        self.seen = len(s)
        return out


def strip_id(starts):
    """[event, args...] of each start (the zdbid checked separately)."""
    return [[s[0]] + s[2:] for s in starts]


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def kill_pid(pid):
    if pid and alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class HooksTest(ZdbTestCase):
    def hooked(self, *args, unix=False, start=True):
        """A server whose --hook is a logging script; returns (zdb, hooklog)."""
        z = Zdb(args=(), unix=unix)
        self.addCleanup(z.cleanup)
        h = HookLog(z.tmpdir)
        z.args = ["--hook", h.exe] + list(args)
        if start:
            z.start()
        return z, h

    def zdbid(self, z):
        if z.unix:
            return "unix://" + z.socket_path
        return "tcp://127.0.0.1:%d" % z.port

    def idx(self, z, n, ns="default"):
        return os.path.realpath(z.index_file(n, ns))

    def dat(self, z, n, ns="default"):
        return os.path.realpath(z.data_file(n, ns))

    # -- start, namespaces, stop --------------------------------------------------------
    def test_start_namespaces_and_stop_sequence(self):
        z, h = self.hooked()
        zid = self.zdbid(z)
        first = h.new_starts(2)
        self.assertEqual(strip_id(first), [["namespaces-init", os.path.realpath(z.index_dir), os.path.realpath(z.data_dir)],
                                           ["ready"]])
        self.assertEqual([s[1] for s in first], [zid, zid])
        # namespaces-init blocks before loading, ready blocks before serving
        self.assertTrue(h.ended("namespaces-init") and h.ended("ready"))

        c = self.client(z)
        self.assertEqual(c.cmd("NSNEW", "foo"), "OK")
        self.assertEqual(strip_id(h.new_starts(1)), [["namespace-created", "foo"]])
        self.assertEqual(c.cmd("NSSET", "foo", "public", "0"), "OK")
        self.assertEqual(strip_id(h.new_starts(1)), [["namespace-updated", "foo"]])
        self.assertEqual(c.cmd("NSSET", "foo", "maxsize", "1000000"), "OK")
        self.assertEqual(strip_id(h.new_starts(1)), [["namespace-updated", "foo"]])
        self.assertEqual(c.cmd("NSNEW", "bar"), "OK")
        self.assertEqual(strip_id(h.new_starts(1)), [["namespace-created", "bar"]])
        self.assertEqual(c.cmd("NSDEL", "bar"), "OK")
        self.assertEqual(strip_id(h.new_starts(1)), [["namespace-deleted", "bar"]])
        # refused commands fire nothing
        self.assertError(c.cmd("NSNEW", "foo"), "This namespace is not available")
        self.assertError(c.cmd("NSSET", "foo", "nope", "1"), "Invalid property")
        self.assertError(c.cmd("NSDEL", "nothere"), "This namespace doesn't exists")
        self.assertEqual(c.cmd("SET", "k", "v"), b"k")
        self.assertEqual(c.cmd("PING"), "PONG")
        time.sleep(0.3)  # room for a wrongly fired hook to show up in the log
        self.assertEqual(h.starts()[h.seen:], [])

        self.assertEqual(z.stop(), 128 + signal.SIGTERM)
        stop = h.new_starts(3)
        self.assertEqual(strip_id(stop[:1]), [["close"]])
        self.assertTrue(all(s[1] == zid for s in stop))
        closing = sorted(strip_id(stop[1:]))
        self.assertEqual(closing, [["namespace-closing", "default", self.idx(z, 0), self.dat(z, 0), ""],
                                   ["namespace-closing", "foo", self.idx(z, 0, "foo"), self.dat(z, 0, "foo"), ""]])
        self.assertTrue(h.ended("close"))

    def test_unix_socket_zdbid(self):
        z, h = self.hooked(unix=True)
        starts = h.new_starts(2)
        self.assertEqual([s[:2] for s in starts], [["namespaces-init", "unix://" + z.socket_path],
                                                   ["ready", "unix://" + z.socket_path]])

    # -- rotation ------------------------------------------------------------------------
    def fill_until_rotation(self, c):
        """50 KiB values at --datasize 512K: ten fit in d0, the eleventh rotates."""
        for i in range(9):
            self.assertEqual(c.cmd("SET", "k%d" % i, bytes([65 + i]) * (50 * KiB)), b"k%d" % i)
        self.assertEqual(c.cmd("DEL", "k1"), "OK")  # flags an entry of i0 in place
        self.assertEqual(c.cmd("SET", "k0", b"z" * (50 * KiB)), b"k0")  # overwrite: i0 again

    def test_rotation_jump_index_and_jump_data(self):
        z, h = self.hooked("--datasize", "512K")
        h.new_starts(2)
        c = self.client(z)
        self.fill_until_rotation(c)
        h.set("sleep", "jump-index", "0.3")
        self.assertEqual(c.cmd("SET", "k9", b"n" * (50 * KiB)), b"k9")
        # blocking: the hook had finished before the write was answered
        self.assertTrue(h.ended("jump-index"))
        h.clear("sleep", "jump-index")
        self.assertEqual(strip_id(h.new_starts(2)), [["jump-index", self.idx(z, 0), self.idx(z, 1), "0"],
                                                     ["jump-data", self.dat(z, 0), self.dat(z, 1)]])
        self.assertTrue(os.path.exists(z.data_file(1)))
        # exit 0 reset the dirty list: the next jump reports none
        self.assertEqual(c.cmd("NSJUMP"), "OK")
        self.assertEqual(strip_id(h.new_starts(2)), [["jump-index", self.idx(z, 1), self.idx(z, 2), ""],
                                                     ["jump-data", self.dat(z, 1), self.dat(z, 2)]])
        # in-place updates of two older files, listed in ascending order
        self.assertEqual(c.cmd("DEL", "k9"), "OK")  # entry in i1
        self.assertEqual(c.cmd("DEL", "k2"), "OK")  # entry in i0
        self.assertEqual(c.cmd("NSJUMP"), "OK")
        self.assertEqual(strip_id(h.new_starts(2)), [["jump-index", self.idx(z, 2), self.idx(z, 3), "0 1"],
                                                     ["jump-data", self.dat(z, 2), self.dat(z, 3)]])
        self.assertEqual(c.cmd("GET", "k0"), b"z" * (50 * KiB))
        self.assertEqual(c.cmd("GET", "k3"), bytes([68]) * (50 * KiB))

    def test_failing_jump_index_keeps_the_dirty_list(self):
        z, h = self.hooked("--datasize", "512K")
        h.new_starts(2)
        c = self.client(z)
        self.fill_until_rotation(c)
        h.set("exit", "jump-index", 2)
        self.assertEqual(c.cmd("SET", "k9", b"n" * (50 * KiB)), b"k9")
        self.assertEqual(strip_id(h.new_starts(2))[0], ["jump-index", self.idx(z, 0), self.idx(z, 1), "0"])
        self.assertEqual(c.cmd("NSJUMP"), "OK")
        self.assertEqual(strip_id(h.new_starts(2))[0], ["jump-index", self.idx(z, 1), self.idx(z, 2), "0"])
        h.clear("exit", "jump-index")
        self.assertEqual(c.cmd("NSJUMP"), "OK")
        self.assertEqual(strip_id(h.new_starts(2))[0], ["jump-index", self.idx(z, 2), self.idx(z, 3), "0"])
        self.assertEqual(c.cmd("NSJUMP"), "OK")
        self.assertEqual(strip_id(h.new_starts(2))[0], ["jump-index", self.idx(z, 3), self.idx(z, 4), ""])
        # HOOKS recorded the failures
        hooks = c.cmd("HOOKS")
        statuses = [(e[0], e[5]) for e in hooks if e[0] == b"jump-index"]
        self.assertEqual(statuses, [(b"jump-index", 2), (b"jump-index", 2), (b"jump-index", 0), (b"jump-index", 0)])

    # -- missing data --------------------------------------------------------------------
    def test_missing_data_restored_and_not_restored(self):
        z, h = self.hooked()
        h.new_starts(2)
        c = self.client(z)
        self.assertEqual(c.cmd("SET", "a", b"value-a" * 100), b"a")
        self.assertEqual(c.cmd("NSJUMP"), "OK")
        self.assertEqual(c.cmd("SET", "b", b"value-b" * 100), b"b")
        self.assertEqual(c.cmd("NSJUMP"), "OK")
        self.assertEqual(c.cmd("SET", "c", b"value-c" * 100), b"c")
        self.assertEqual(c.cmd("NSJUMP"), "OK")
        self.assertEqual(c.cmd("SET", "e", b"value-e" * 100), b"e")
        self.assertEqual(c.cmd("NSJUMP"), "OK")
        h.new_starts(8)  # four jump-index + jump-data pairs
        d0, d1, d3 = self.dat(z, 0), self.dat(z, 1), self.dat(z, 3)

        # d0 offloaded, the hook brings it back: the read is retried and succeeds
        os.rename(d0, d0 + ".away")
        self.assertEqual(c.cmd("GET", "a"), b"value-a" * 100)
        self.assertEqual(strip_id(h.new_starts(1)), [["missing-data", d0]])
        self.assertTrue(h.ended("missing-data"))
        self.assertTrue(os.path.exists(d0))
        self.assertEqual(c.cmd("GET", "a"), b"value-a" * 100)  # no hook: the file is there

        # d1 offloaded and the hook cannot restore it: an error, and the server keeps serving
        os.rename(d1, d1 + ".gone")
        self.assertError(c.cmd("GET", "b"), "Internal Error")
        self.assertEqual(strip_id(h.new_starts(1)), [["missing-data", d1]])
        self.assertEqual(c.cmd("PING"), "PONG")
        self.assertEqual(c.cmd("GET", "c"), b"value-c" * 100)
        self.assertEqual(c.cmd("GET", "a"), b"value-a" * 100)
        self.assertEqual(c.cmd("EXISTS", "b"), 1)
        self.assertEqual(c.cmd("LENGTH", "b"), 700)
        self.assertEqual(c.cmd("MGET", "a", "b", "c"), [b"value-a" * 100, None, b"value-c" * 100])
        self.assertError(c.cmd("KEYTIME", "b"), "Internal Error")
        self.assertEqual(c.cmd("CHECK", "b"), -1)
        self.assertEqual(strip_id(h.new_starts(3)), [["missing-data", d1]] * 3)
        self.assertEqual(c.cmd("SET", "d", b"new"), b"d")
        # back in place by other means: read without a hook
        os.rename(d1 + ".gone", d1)
        self.assertEqual(c.cmd("GET", "b"), b"value-b" * 100)
        self.assertEqual(c.cmd("CHECK", "b"), 1)
        self.assertIsInstance(c.cmd("KEYTIME", "b"), int)
        time.sleep(0.3)
        self.assertEqual(h.starts()[h.seen:], [])

        # KEYTIME reads the data entry header: restored the same way
        os.rename(d3, d3 + ".away")
        self.assertIsInstance(c.cmd("KEYTIME", "e"), int)
        self.assertEqual(strip_id(h.new_starts(1)), [["missing-data", d3]])
        self.assertEqual(c.cmd("GET", "e"), b"value-e" * 100)
        hooks = [e for e in c.cmd("HOOKS") if e[0] == b"missing-data"]
        self.assertEqual([(e[1], e[5]) for e in hooks],
                         [([d0.encode()], 0)] + [([d1.encode()], 1)] * 4 + [([d3.encode()], 0)])

    def test_missing_data_without_hook(self):
        z = self.new_zdb()
        c = self.client(z)
        self.assertEqual(c.cmd("SET", "a", b"x" * 100), b"a")
        self.assertEqual(c.cmd("NSJUMP"), "OK")
        os.rename(z.data_file(0), z.data_file(0) + ".gone")
        self.assertError(c.cmd("GET", "a"), "Internal Error")
        self.assertEqual(c.cmd("PING"), "PONG")
        self.assertEqual(c.cmd("HOOKS"), [])

    # -- start-up refusals ----------------------------------------------------------------
    def test_failing_ready_hook_aborts_start(self):
        z, h = self.hooked(start=False)
        h.set("exit", "ready", 3)
        rc, out = z.start_expect_failure()
        self.assertEqual(rc, 1)
        self.assertIn("ready hook exited with status 3", out)
        self.assertEqual([s[0] for s in h.starts()], ["namespaces-init", "ready"])
        # the same directories start fine once the hook agrees
        h.clear("exit", "ready")
        z.start()
        c = self.client(z)
        self.assertEqual(c.cmd("PING"), "PONG")

    def test_blocking_hook_time_limit(self):
        z, h = self.hooked("--hooktimeout", "1", start=False)
        h.set("sleep", "ready", 60)
        rc, out = z.start_expect_failure()
        self.assertEqual(rc, 1)
        self.assertIn("ready hook failed: hook ready timed out after 1 s", out)
        pid = h.pid_of("ready")
        self.assertIsNotNone(pid)
        self.addCleanup(kill_pid, pid)
        self.assertFalse(alive(pid), "the timed-out hook was not killed")
        self.assertFalse(h.ended("ready"))

    def test_bad_hook_flags(self):
        z = Zdb()
        self.addCleanup(z.cleanup)
        rc, out = z.start_expect_failure(["--hook", os.path.join(z.tmpdir, "does-not-exist")])
        self.assertEqual(rc, 1)
        self.assertIn("not an executable", out)
        rc, out = z.start_expect_failure(["--hooktimeout", "0"])
        self.assertEqual(rc, 1)
        self.assertIn("invalid hooktimeout", out)
        # executable, but it cannot be started (bad interpreter): the ready hook fails
        bad = os.path.join(z.tmpdir, "bad-interpreter")
        with open(bad, "w") as f:
            f.write("#!/nonexistent/interpreter\n")
        os.chmod(bad, 0o755)
        rc, out = z.start_expect_failure(["--hook", bad])
        self.assertEqual(rc, 1)
        self.assertIn("the ready hook failed: run hook ready", out)

    # -- hook children and the server's descriptors -----------------------------------------
    def server_fds_held_by(self, pid, z):
        """Descriptors of process pid that point at the server's files or sockets."""
        bad = []
        fddir = "/proc/%d/fd" % pid
        for fd in os.listdir(fddir):
            try:
                target = os.readlink(os.path.join(fddir, fd))
            except FileNotFoundError:
                continue
            if int(fd) > 2 or target.startswith("socket:") or z.index_dir in target or z.data_dir in target:
                bad.append((fd, target))
        return bad

    def test_hook_children_hold_no_lock_or_socket(self):
        z, h = self.hooked()
        h.new_starts(2)
        c = self.client(z)
        h.set("sleep", "namespace-created", 60)
        h.set("sleep", "namespace-closing", 60)
        self.assertEqual(c.cmd("NSNEW", "slow"), "OK")
        h.new_starts(1)
        created = h.pid_of("namespace-created")
        self.addCleanup(kill_pid, created)
        self.assertTrue(alive(created))
        self.assertEqual(self.server_fds_held_by(created, z), [])
        # a running non-blocking hook: HOOKS shows it unfinished
        entry = [e for e in c.cmd("HOOKS") if e[0] == b"namespace-created"][0]
        self.assertEqual(entry[1], [b"slow"])
        self.assertEqual((entry[2], entry[4], entry[5]), (created, 0, 0))
        self.assertGreater(entry[3], 0)
        c.close()

        # stop while slow non-blocking hooks still run: the server does not wait for them,
        # and a new server on the same directories gets the locks
        self.assertEqual(z.stop(), 128 + signal.SIGTERM)
        h.new_starts(3)  # close + two namespace-closing
        closing = [r["pid"] for r in h.records() if "start" in r and r["start"][0] == "namespace-closing"]
        self.assertEqual(len(closing), 2)
        for pid in closing:
            self.addCleanup(kill_pid, pid)
        self.assertTrue(all(alive(p) for p in closing))
        for pid in closing:
            self.assertEqual(self.server_fds_held_by(pid, z), [])
        z.start(args=[])
        c2 = self.client(z)
        self.assertEqual(c2.cmd("PING"), "PONG")
        self.assertEqual(c2.cmd("NSINFO", "slow")[:16], b"# namespace\nname")
        self.assertTrue(alive(created))

    # -- HOOKS -------------------------------------------------------------------------------
    def test_hooks_command(self):
        z, h = self.hooked("--admin", "secret")
        h.new_starts(2)
        c = self.client(z)
        self.assertError(c.cmd("HOOKS"), "Permission denied")
        self.assertEqual(c.cmd("AUTH", "secret"), "OK")
        self.assertError(c.cmd("HOOKS", "x"), "Unexpected arguments")
        self.assertEqual(c.cmd("NSNEW", "n1"), "OK")
        h.new_starts(1)
        self.assertTrue(h.wait_end("namespace-created"))
        # the finished non-blocking hook is reaped by the loop or by HOOKS itself
        deadline = time.monotonic() + WAIT
        while True:
            hooks = c.cmd("HOOKS")
            if hooks[-1][4] != 0 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual([e[0] for e in hooks], [b"namespaces-init", b"ready", b"namespace-created"])
        init, ready, created = hooks
        self.assertEqual(init[1], [os.path.realpath(z.index_dir).encode(), os.path.realpath(z.data_dir).encode()])
        self.assertEqual(ready[1], [])
        self.assertEqual(created[1], [b"n1"])
        pids = [r["pid"] for r in h.records() if "start" in r]
        for e, pid in zip(hooks, pids):
            self.assertEqual(len(e), 6)
            self.assertEqual(e[2], pid)
            self.assertGreater(e[3], 1600000000)
            self.assertGreaterEqual(e[4], e[3])
            self.assertEqual(e[5], 0)

    def test_hooks_list_is_bounded_and_reaped(self):
        true = "/bin/true" if os.path.exists("/bin/true") else "/usr/bin/true"
        z = self.new_zdb("--hook", true)
        c = self.client(z)
        n = 140
        for i in range(n):
            self.assertEqual(c.cmd("NSSET", "default", "lock", str(i % 2)), "OK")
        deadline = time.monotonic() + WAIT
        while True:
            hooks = c.cmd("HOOKS")
            if all(e[4] for e in hooks) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(len(hooks), 128)
        self.assertTrue(all(e[0] == b"namespace-updated" and e[1] == [b"default"] for e in hooks))
        self.assertTrue(all(e[4] >= e[3] > 0 and e[5] == 0 for e in hooks))
        # every child was reaped: none is left as a zombie of the server
        children = []
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open("/proc/%s/stat" % pid) as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except (FileNotFoundError, ProcessLookupError):
                    continue
                if int(fields[1]) == z.proc.pid:
                    children.append((pid, fields[0]))
        self.assertEqual(children, [])
        self.assertEqual(c.cmd("PING"), "PONG")

    def test_hooks_without_hook(self):
        z = self.new_zdb()
        c = self.client(z)
        self.assertEqual(c.cmd("HOOKS"), [])
        self.assertError(c.cmd("HOOKS", "a"), "Unexpected arguments")

    # -- crash ---------------------------------------------------------------------------------
    def test_crash_hook_on_abort(self):
        z, h = self.hooked()
        h.new_starts(2)
        os.kill(z.proc.pid, signal.SIGABRT)
        z.proc.wait(timeout=zdbtest.STOP_TIMEOUT)
        self.assertEqual(z.proc.returncode, -signal.SIGABRT)
        z.proc = None
        self.assertEqual(h.new_starts(1), [["crash", self.zdbid(z)]])


if __name__ == "__main__":
    zdbtest.main()
