"""Integration tests of the whole stack: `qsfs up/down/status/restore` over a cluster of
real zdb backends on 127.0.0.1 (zstortest.Cluster), with the zstor daemon, the local zdb
and its qsfs-hook, and a zdbfs mount.

- lifecycle: files written through the mount (checksummed), rotation, checkpoint and
  eviction of everything evictable, read back through the mount (missing-data retrieves),
  a failure domain of backends killed, read again; then every local process killed with
  SIGKILL, the frontend thrown away and `qsfs restore`d into another directory with a
  meta backend and a group down; no backend holds a readable byte;
- kill -9 of zdbfs, zdb and the daemon during a write load, `qsfs up` again: every
  fsync'd file is intact;
- a new user's mistakes: a typo in the config (the line is named), a backend down at start
  (starts, status says degraded), the daemon stopped (the mount serves what is local and
  status says why uploads stall).

Every process is stopped by PID and every mount taken down, also when a test fails.
"""
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import zdbtest
import zstortest

MARKER = b"QSFS-MARKER-NO-BACKEND-MAY-HOLD-THIS"


def bin_path(name):
    return os.path.join(zdbtest.BUILD_DIR, name, name) if name != "qsfs-hook" else \
        os.path.join(zdbtest.BUILD_DIR, "qsfs", "qsfs-hook")


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


class Frontend:
    """A [qsfs] table over a cluster: its config, the qsfs command, and a thorough stop."""

    def __init__(self, cluster, base, extra=""):
        self.cluster = cluster
        self.dir = os.path.join(base, "state")
        self.mnt = os.path.join(base, "mnt")
        self.config = os.path.join(base, "qsfs.toml")
        period = "" if "checkpoint_s" in extra else "checkpoint_s = 2\n"
        table = "health_interval_s = 1\n[qsfs]\ndir = \"%s\"\nmountpoint = \"%s\"\n%s%s" % (
            self.dir, self.mnt, period, extra)
        with open(self.config, "w") as f:
            f.write(cluster.config_text(drop="root =", extra=table))

    def qsfs(self, *args, timeout=300, check=True):
        p = subprocess.run([bin_path("qsfs"), "-c", self.config] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        out = p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace")
        if check and p.returncode != 0:
            raise AssertionError("qsfs %s -> %d\n%s\n%s" % (" ".join(args), p.returncode, out,
                                                          self.logs()))
        return p.returncode, out

    def zstor(self, *args, timeout=300):
        p = subprocess.run([zstortest.zstor_binary(), "-c", self.config] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        return p.returncode, p.stdout.decode("utf-8", "replace") + p.stderr.decode()

    def pid(self, name):
        try:
            with open(os.path.join(self.dir, name + ".pid")) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def logs(self):
        out = []
        for name in ("zstor", "zdb", "zdbfs"):
            try:
                with open(os.path.join(self.dir, "log", name + ".log"), "rb") as f:
                    text = f.read().decode("utf-8", "replace")
                i = max(text.find("Sanitizer"), text.find("runtime error:"))
                out.append("--- %s.log ---\n%s" % (name, text[i - 200:i + 3000] if i >= 0 else text[-3000:]))
            except OSError:
                pass
        return "\n".join(out)

    def rotate(self):
        """zdb closes the open data files of both namespaces (NSJUMP)."""
        with zdbtest.Client(unix=os.path.join(self.dir, "zdb.sock")) as c:
            for ns in ("zdbfs-meta", "zdbfs-data"):
                assert c.cmd("SELECT", ns) == "OK"
                assert c.cmd("NSJUMP") == "OK"

    def kill9(self, name):
        pid = self.pid(name)
        if pid and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            for _ in range(500):
                if not pid_alive(pid):
                    break
                time.sleep(0.01)

    def stop(self):
        """Everything down, whatever state it is in."""
        if mounted(self.mnt):
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], timeout=60,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name in ("zdbfs", "zdb", "zstor"):
            pid = self.pid(name)
            if pid and pid_alive(pid):
                os.kill(pid, signal.SIGTERM)
                for _ in range(300):
                    if not pid_alive(pid):
                        break
                    time.sleep(0.02)
                if pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)


class HookKiller:
    """A thread that kills with SIGKILL every qsfs-hook the frontend's zdb runs, as soon as
    it sees one (only children of that zdb: no other process is touched)."""

    def __init__(self, front):
        self.front = front
        self.killed = 0
        self.stop_flag = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop_flag.is_set():
            zpid = self.front.pid("zdb")
            for name in os.listdir("/proc"):
                if not name.isdigit():
                    continue
                try:
                    with open("/proc/%s/stat" % name) as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    with open("/proc/%s/cmdline" % name, "rb") as f:
                        cmd = f.read()
                except OSError:
                    continue
                if zpid and int(fields[1]) == zpid and b"qsfs-hook" in cmd:
                    try:
                        os.kill(int(name), signal.SIGKILL)
                        self.killed += 1
                    except OSError:
                        pass
            time.sleep(0.002)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.t.join(10)


def write_tree(root, rnd, nfiles, size, fsync=True):
    """nfiles files of about size bytes (text and random halves, with the marker), fsync'd
    unless told; returns {relative path: sha256}."""
    sums = {}
    words = b"quantum safe storage erasure coded encrypted dispersed backend shard ".split()
    for i in range(nfiles):
        d = os.path.join(root, "dir%d" % (i % 7), "sub%d" % (i % 3))
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, "file%04d.bin" % i)
        n = rnd.randint(size // 2, size * 3 // 2)
        half = n // 2
        text = b" ".join(rnd.choice(words) for _ in range(half // 6 + 1))[:half]
        data = MARKER + text + os.urandom(n - half)
        with open(p, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        sums[os.path.relpath(p, root)] = hashlib.sha256(data).hexdigest()
    return sums


def check_tree(root, sums):
    bad = []
    for rel, want in sums.items():
        p = os.path.join(root, rel)
        try:
            got = sha(p)
        except OSError as e:
            bad.append("%s: %s" % (rel, e))
            continue
        if got != want:
            bad.append("%s: content differs" % rel)
    return bad


def drop_caches():
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        pass


class QsfsTest(unittest.TestCase):
    def setUp(self):
        if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
            self.skipTest("needs root and /dev/fuse")
        self.tmp = tempfile.mkdtemp(prefix="qsfstest-")
        self.fronts = []
        self.cluster = None

    def tearDown(self):
        reports = []
        for f in self.fronts:
            f.stop()
            text = f.logs()
            if "Sanitizer" in text or "runtime error:" in text:
                reports.append(text)
        if self.cluster:
            self.cluster.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)
        # a sanitizer report of any part (the daemon, zdb, zdbfs, the hook) fails the test
        self.assertEqual(reports, [])

    def make(self, base="a", extra="", **kw):
        if self.cluster is None:
            self.cluster = zstortest.Cluster(tmp=self.tmp, **kw)
        os.makedirs(os.path.join(self.tmp, base), exist_ok=True)
        f = Frontend(self.cluster, os.path.join(self.tmp, base), extra=extra)
        self.fronts.append(f)
        return f

    def test_lifecycle_evict_failure_domain_restore(self):
        small = zstortest.sanitized()
        f = self.make()
        rc, out = f.qsfs("up")
        self.assertIn("qsfs is up", out)
        rnd = random.Random(11)
        nfiles, size = (30, 40000) if small else (120, 300000)
        sums = write_tree(f.mnt, rnd, nfiles, size)
        f.rotate()
        rc, out = f.zstor("checkpoint")
        self.assertEqual(rc, 0, out + f.logs())
        rc, out = f.zstor("evict", "--all")
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"evict: [1-9]\d* files deleted")
        # the open data file (zdb appends to it) is never evicted, even though it is stored
        ddir = os.path.join(f.dir, "data", "zdbfs-data")
        ids = sorted(int(n[1:]) for n in os.listdir(ddir) if n[0] == "d" and n[1:].isdigit())
        self.assertEqual(len(ids), 1, ids)
        self.assertGreater(ids[0], 0)
        drop_caches()
        self.assertEqual(check_tree(f.mnt, sums), [], f.logs())
        # a whole failure domain (group 1) gone: evict again and read through the mount
        for b in self.cluster.data:
            if b.group == 1:
                b.kill()
        f.rotate()
        f.zstor("checkpoint", "--timeout", "60")  # may fail: data backends are down
        f.zstor("evict", "--all")
        drop_caches()
        self.assertEqual(check_tree(f.mnt, sums), [], f.logs())
        rc, out = f.qsfs("status", check=False)
        self.assertIn("unreachable", out)
        # the machine dies: every local process killed, the frontend thrown away
        for b in self.cluster.data:
            if b.group == 1:
                b.start()  # back: the store of the last changes needs a full placement
        more = write_tree(os.path.join(f.mnt, "late"), rnd, 5, 20000)
        for _ in range(30):  # until the daemon's health probe sees group 1 again
            rc, out = f.zstor("checkpoint", "--timeout", "120")
            if rc == 0:
                break
            time.sleep(1)
        self.assertEqual(rc, 0, out + f.logs())
        for name in ("zdbfs", "zdb", "zstor"):
            f.kill9(name)
        f.stop()
        shutil.rmtree(f.dir)
        # a new machine, another directory, one meta backend and group 2 down
        self.cluster.meta[0].kill()
        for b in self.cluster.data:
            if b.group == 2:
                b.kill()
        g = self.make("b")
        rc, out = g.qsfs("restore")
        self.assertIn("files retrieved", out)
        self.assertEqual(check_tree(g.mnt, sums), [], g.logs())
        self.assertEqual(check_tree(os.path.join(g.mnt, "late"), more), [], g.logs())
        # and no backend holds a readable byte
        for b in self.cluster.meta + self.cluster.data:
            for p in b.files():
                with open(p, "rb") as fh:
                    self.assertNotIn(MARKER, fh.read(), p)
        rc, out = g.qsfs("down", check=False)
        self.assertIn("zdbfs: unmounted", out)
        self.assertFalse(mounted(g.mnt))

    def test_checkpoint_covers_what_was_written_before_it(self):
        """`zstor checkpoint` returns only once everything written before it is stored, fsync'd
        or not: the mount is flushed first (the kernel's pages, then zdbfs's own). Without
        that, files closed a moment before the checkpoint were missing after a restore."""
        f = self.make(extra="checkpoint_s = 3600\n")  # only the asked pass runs
        f.qsfs("up")
        rnd = random.Random(5)
        sums = write_tree(f.mnt, rnd, 12, 60000, fsync=False)
        big = os.urandom(3 << 20)
        with open(os.path.join(f.mnt, "big.bin"), "wb") as fh:
            fh.write(big)
        sums["big.bin"] = hashlib.sha256(big).hexdigest()
        rc, out = f.zstor("checkpoint", "--timeout", "120")
        self.assertEqual(rc, 0, out + f.logs())
        # a hung mount (zdbfs stopped) holds the flush, not the daemon: the caller's bound
        # ends its wait, the daemon keeps answering, and the mount's return finishes it
        zpid = f.pid("zdbfs")
        os.kill(zpid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            rc, out = f.zstor("checkpoint", "--timeout", "2", timeout=60)
            self.assertNotEqual(rc, 0, out)
            self.assertIn("not done after 2 s", out)
            self.assertLess(time.monotonic() - t0, 30)
            rc, out = f.zstor("status", timeout=60)
            self.assertEqual(rc, 0, out)
        finally:
            os.kill(zpid, signal.SIGCONT)
        rc, out = f.zstor("checkpoint", "--timeout", "120")
        self.assertEqual(rc, 0, out + f.logs())
        for name in ("zdbfs", "zdb", "zstor"):
            f.kill9(name)
        f.stop()
        shutil.rmtree(f.dir)
        g = self.make("b")
        rc, out = g.qsfs("restore")
        self.assertEqual(check_tree(g.mnt, sums), [], g.logs())
        g.qsfs("down", check=False)

    def test_kill9_each_part_during_writes(self):
        f = self.make()
        f.qsfs("up")
        rnd = random.Random(5)
        sums = {}
        for round_, victim in enumerate(["zdbfs", "zdb", "zstor", "hook", "zdbfs", "zdb"]):
            if victim == "hook":
                # every hook zdb starts is killed (mid-run): rotations, dirty index files and
                # the ready hook of a restart all go unanswered; the checkpoint still stores.
                # The daemon is stopped (SIGSTOP) meanwhile, so that the hooks that talk to
                # it wait and are surely caught, not only those the killer's scan sees
                base = os.path.join(f.mnt, "r%d" % round_)
                dpid = f.pid("zstor")
                os.kill(dpid, signal.SIGSTOP)
                try:
                    with HookKiller(f) as hk:
                        sums.update({os.path.join("r%d" % round_, k): v
                                     for k, v in write_tree(base, rnd, 8, 50000).items()})
                        f.rotate()
                        f.rotate()
                        for _ in range(500):
                            if hk.killed:
                                break
                            time.sleep(0.01)
                        time.sleep(0.3)
                finally:
                    os.kill(dpid, signal.SIGCONT)
                self.assertGreater(hk.killed, 0)
                rc, out = f.zstor("checkpoint", "--timeout", "120")
                self.assertEqual(rc, 0, out + f.logs())
                continue
            # a writer fsyncs file after file; the victim dies while it writes
            done = {}
            stop = threading.Event()

            def writer(r=round_):
                i = 0
                while not stop.is_set():
                    rel = os.path.join("r%d" % r, "f%04d" % i)
                    data = os.urandom(rnd.randint(1000, 200000))
                    try:
                        os.makedirs(os.path.join(f.mnt, "r%d" % r), exist_ok=True)
                        with open(os.path.join(f.mnt, rel), "wb") as fh:
                            fh.write(data)
                            fh.flush()
                            os.fsync(fh.fileno())
                    except OSError:
                        time.sleep(0.05)  # the mount is down or zdb is gone: try again
                        continue
                    done[rel] = hashlib.sha256(data).hexdigest()
                    i += 1

            def wait_for(n, what):
                # bounded: a loaded machine (CI runs tests side by side) may take seconds
                # for the first fsync'd file, so the test waits for it rather than guessing
                for _ in range(600):
                    if len(done) >= n or not t.is_alive():
                        break
                    time.sleep(0.05)
                self.assertGreaterEqual(len(done), n, "%s (victim %s)\n%s" % (what, victim, f.logs()))

            t = threading.Thread(target=writer, daemon=True)
            t.start()
            wait_for(1, "no file fsync'd before the kill")
            time.sleep(rnd.uniform(0.0, 0.7))
            if rnd.random() < 0.5:
                f.rotate()
            f.kill9(victim)
            if victim == "zdbfs":
                stop.set()  # its mount is dead until `qsfs up`
                t.join(60)
            rc, out = f.qsfs("up")
            if victim == "zdbfs":
                stop.clear()
                t = threading.Thread(target=writer, daemon=True)
                t.start()
            # the mount takes writes again after the restart
            wait_for(len(done) + 1, "no file fsync'd after `qsfs up`")
            stop.set()
            t.join(60)
            self.assertFalse(t.is_alive())
            sums.update(done)
            self.assertEqual(check_tree(f.mnt, sums), [], "after kill -9 of %s\n%s" % (victim, f.logs()))
        rc, out = f.qsfs("down")
        self.assertIn("every local change is stored", out)
        # and it all comes back into a fresh directory from the backends alone
        shutil.rmtree(f.dir)
        g = self.make("b")
        g.qsfs("restore")
        self.assertEqual(check_tree(g.mnt, sums), [], g.logs())
        g.qsfs("down")

    def test_new_user_mistakes(self):
        f = self.make(meta=4, groups=(1, 1, 1, 1), k=2, n=3, rg=0, rn=0)
        # a typo: the line is named, nothing starts
        with open(f.config) as fh:
            good = fh.read()
        with open(f.config, "w") as fh:
            fh.write(good.replace("checkpoint_s = 2", "chekpoint_s = 2"))
        rc, out = f.qsfs("up", check=False)
        self.assertEqual(rc, 1)
        self.assertRegex(out, r"qsfs.toml:\d+: qsfs.chekpoint_s: unknown key")
        self.assertFalse(os.path.exists(os.path.join(f.dir, "zstor.pid")))
        with open(f.config, "w") as fh:
            fh.write(good.replace("[qsfs]", "[qsfs]\nmountpoint2 = 1"))
        rc, out = f.qsfs("status", check=False)
        self.assertEqual(rc, 1)
        self.assertIn("unknown key", out)
        with open(f.config, "w") as fh:
            fh.write(good)
        # a data backend down at start: it starts and says what is degraded
        self.cluster.data[3].kill()
        rc, out = f.qsfs("up")
        rc, out = f.qsfs("status", check=False)
        self.assertEqual(rc, 0, out)
        self.assertIn("1 unreachable", out)
        sums = write_tree(f.mnt, random.Random(3), 6, 20000)
        # the daemon stopped: the mount still serves what is local, status says why
        f.kill9("zstor")
        self.assertEqual(check_tree(f.mnt, sums), [])
        more = write_tree(os.path.join(f.mnt, "more"), random.Random(4), 3, 20000)
        st = os.statvfs(f.mnt)
        self.assertGreater(st.f_blocks, 0)
        rc, out = f.qsfs("status", check=False)
        self.assertEqual(rc, 1)
        self.assertIn("NOT RUNNING", out)
        self.assertIn("uploads stall", out)
        # back: the checkpoint catches up with what was written meanwhile
        f.qsfs("up")
        rc, out = f.zstor("checkpoint", "--timeout", "120")
        self.assertEqual(rc, 0, out + f.logs())
        rc, out = f.zstor("list")
        self.assertIn("index/zdbfs-meta/zdb-namespace", out)
        self.assertEqual(check_tree(os.path.join(f.mnt, "more"), more), [])
        self.assertTrue(os.path.exists(os.path.join(f.dir, "frontend.id")))
        # a second frontend that is not a restore of this one, on the same backends and
        # prefix: refused (each would overwrite the other's files)
        g = self.make("b")
        os.makedirs(g.dir)
        with open(os.path.join(g.dir, "frontend.id"), "w") as fh:
            fh.write("0" * 32 + "\n")
        rc, out = g.qsfs("up", check=False)
        self.assertEqual(rc, 1, out)
        self.assertIn("another qsfs frontend stores under the same names", out)
        self.assertFalse(mounted(g.mnt))
        g.stop()
        f.qsfs("down")

    def test_parts_run_as_the_systemd_units_run_them(self):
        """qsfs run zstor|zdb|zdbfs in the foreground, started in the units' order and
        stopped in reverse with SIGTERM, the zstor unit's ExecStop checkpoint between."""
        f = self.make()
        procs = {}
        logs = {}

        def run(part):
            logs[part] = open(os.path.join(self.tmp, "run-%s.log" % part), "wb")
            procs[part] = subprocess.Popen([bin_path("qsfs"), "-c", f.config, "run", part],
                                           stdout=logs[part], stderr=subprocess.STDOUT)

        def log(part):
            with open(os.path.join(self.tmp, "run-%s.log" % part), "rb") as fh:
                return fh.read().decode("utf-8", "replace")[-3000:]

        def wait_for(cond, what, part):
            for _ in range(600):
                if cond():
                    return
                self.assertIsNone(procs[part].poll(), "%s exited:\n%s" % (what, log(part)))
                time.sleep(0.05)
            self.fail("%s: not ready in 30 s\n%s" % (what, log(part)))

        try:
            run("zstor")
            wait_for(lambda: "zstor daemon  running" in f.qsfs("status", check=False)[1],
                     "qsfs run zstor", "zstor")
            run("zdb")
            sock = os.path.join(f.dir, "zdb.sock")
            wait_for(lambda: os.path.exists(sock) and f.qsfs("status", check=False)[1].find(
                "zdb           running") >= 0, "qsfs run zdb", "zdb")
            run("zdbfs")
            wait_for(lambda: mounted(f.mnt), "qsfs run zdbfs", "zdbfs")
            for part in ("zstor", "zdb", "zdbfs"):  # exec keeps the pid: status and down find it
                self.assertEqual(f.pid(part), procs[part].pid, part)
            sums = write_tree(f.mnt, random.Random(9), 10, 30000)
            rc, out = f.qsfs("status")
            self.assertIn("mounted on", out)
            for part, ok in (("zdbfs", (0,)), ("zdb", (0, 143))):  # the unit's SuccessExitStatus
                procs[part].send_signal(signal.SIGTERM)
                self.assertIn(procs[part].wait(60), ok, log(part))
            self.assertFalse(mounted(f.mnt))
            rc, out = f.zstor("checkpoint", "--timeout", "120")  # the unit's ExecStop
            self.assertEqual(rc, 0, out)
            procs["zstor"].send_signal(signal.SIGTERM)
            procs["zstor"].wait(60)
        finally:
            for p in procs.values():
                if p.poll() is None:
                    p.kill()
                    p.wait(30)
            for fh in logs.values():
                fh.close()
        shutil.rmtree(f.dir)
        g = self.make("b")
        g.qsfs("restore")
        self.assertEqual(check_tree(g.mnt, sums), [], g.logs())
        g.qsfs("down")

    def test_one_gib_many_files_evicted_and_read_back(self):
        """1 GiB in 256 files through the mount, everything evictable evicted, all read back
        (the plain pass only: under ASan it takes too long)."""
        if zstortest.sanitized():
            self.skipTest("1 GiB under ASan: the plain pass runs it")
        f = self.make()
        f.qsfs("up")
        sums = {}
        for i in range(256):
            data = os.urandom(4 << 20)
            p = os.path.join(f.mnt, "big", "d%02d" % (i % 16), "f%03d" % i)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as fh:
                fh.write(data)
            sums[os.path.relpath(p, f.mnt)] = hashlib.sha256(data).hexdigest()
        os.sync()
        f.rotate()
        rc, out = f.zstor("checkpoint", "--timeout", "600")
        self.assertEqual(rc, 0, out + f.logs())
        rc, out = f.zstor("evict", "--all")
        self.assertEqual(rc, 0, out)
        left = sum(os.path.getsize(os.path.join(f.dir, "data", "zdbfs-data", n))
                   for n in os.listdir(os.path.join(f.dir, "data", "zdbfs-data")))
        self.assertLess(left, 16 << 20, out)  # only the open data file stays
        drop_caches()
        self.assertEqual(check_tree(f.mnt, sums), [], f.logs())
        f.qsfs("down")


if __name__ == "__main__":
    zdbtest.main()
