"""zstor monitor: the daemon, and the CLI forwarding to it (docs/zstor-daemon.md)."""
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import zstortest  # noqa: E402


class Daemon:
    """zstor monitor on a cluster's config, stopped by PID."""

    def __init__(self, cl, config=None):
        self.cl = cl
        self.config = config or cl.config
        self.log = os.path.join(cl.tmp, "daemon-%d.log" % time.monotonic_ns())
        self.proc = None

    def start(self, wait=True):
        env = dict(os.environ, ZSTOR_QUEUE_NOSYNC="1")
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([zstortest.zstor_binary(), "-c", self.config, "monitor"],
                                     stdout=self.logf, stderr=self.logf, env=env,
                                     stdin=subprocess.DEVNULL)
        if wait:
            deadline = time.monotonic() + 30
            while "serving" not in self.text():
                if self.proc.poll() is not None:
                    raise AssertionError("daemon exited %s:\n%s" % (self.proc.returncode, self.text()))
                if time.monotonic() > deadline:
                    raise AssertionError("daemon did not start:\n" + self.text())
                time.sleep(0.05)
        return self

    def text(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, needle, timeout=30):
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if time.monotonic() > deadline:
                t = "\n".join(l for l in self.text().splitlines() if "scrub pass" not in l)
                raise AssertionError("%r not in the daemon log:\n%s" % (needle, t[-6000:]))
            time.sleep(0.1)

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc:
            self.logf.close()
        for m in zstortest.zdbtest.SANITIZER_MARKERS:
            if m in self.text():
                raise AssertionError("sanitizer report from the daemon:\n" + self.text()[-8000:])
        return self.proc.returncode if self.proc else None


class DaemonTest(unittest.TestCase):
    extra = ""

    groups = (2, 2, 2)
    health = 1

    def setUp(self):
        self.sock = None
        self.cl = zstortest.Cluster(extra="", groups=self.groups)
        self.sock = os.path.join(self.cl.tmp, "zstor.sock")
        self.pidf = os.path.join(self.cl.tmp, "zstor.pid")
        self.cl.extra = ('socket = "%s"\npid_file = "%s"\nhealth_interval_s = %d\n%s'
                         % (self.sock, self.pidf, self.health, self.extra))
        self.cl.write_config()
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            d.stop()
        self.cl.cleanup()

    def daemon(self, **kw):
        d = Daemon(self.cl, **kw)
        self.daemons.append(d)
        return d.start()


class Forwarding(DaemonTest):
    def test_same_output_as_in_process(self):
        data = os.urandom(300000)
        p = self.cl.write("a/b.bin", data)
        self.cl.write("a/c.txt", b"hello\n")
        r = self.cl.zstor("store", "-f", self.cl.path("a"))
        self.assertEqual(r.rc, 0, r)
        cases = [("list", "-l"), ("check", "-f", p), ("retrieve", "-f", p, "-o", "-"),
                 ("store",), ("nosuch",), ("check", "-f", self.cl.path("nope")),
                 ("list", "--json"), ("retrieve", "-f", self.cl.path("nope"))]
        before = [self.cl.zstor(*c) for c in cases]
        self.daemon()
        after = [self.cl.zstor(*c) for c in cases]
        for c, a, b in zip(cases, before, after):
            self.assertEqual((a.rc, a.out, a.err), (b.rc, b.out, b.err), c)
        # a relative path resolves against the caller's directory, as in-process
        r = self.cl.zstor("check", "-f", "b.bin", cwd=self.cl.path("a"))
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, before[1].out)
        # status comes from the daemon, with its part
        r = self.cl.zstor("status")
        self.assertEqual(r.rc, 0, r)
        self.assertIn("daemon (pid", r.text())
        self.assertIn("queue: 0 files", r.text())

    def test_retrieve_to_stdout_is_byte_identical(self):
        data = os.urandom(2 << 20)
        p = self.cl.write("big.bin", data)
        self.daemon()
        self.assertEqual(self.cl.zstor("store", "-f", p).rc, 0)
        proc = subprocess.run([zstortest.zstor_binary(), "-c", self.cl.config, "retrieve", "-f", p,
                               "-o", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, data)

    def test_stale_socket_and_second_daemon(self):
        d = self.daemon()
        second = Daemon(self.cl)
        second.start(wait=False)
        self.assertEqual(second.proc.wait(30), 1)
        second.logf.close()
        self.assertIn("another zstor daemon (pid %d)" % d.proc.pid, second.text())
        self.assertEqual(self.cl.zstor("list").rc, 0)  # the first still serves
        d.proc.kill()
        d.proc.wait(10)
        self.assertTrue(os.path.exists(self.sock))  # left behind by kill -9
        # without a daemon the CLI runs in-process, the stale socket notwithstanding
        r = self.cl.zstor("list")
        self.assertEqual(r.rc, 0, r)
        d2 = self.daemon()
        self.assertIn("removed the stale socket", d2.text())
        self.assertEqual(self.cl.zstor("list").rc, 0)
        with open(self.pidf) as f:
            self.assertEqual(int(f.read()), d2.proc.pid)

    def test_interrupt_cancels_on_the_daemon(self):
        p = self.cl.write("big.bin", os.urandom(128 << 20))
        d = self.daemon()
        proc = subprocess.Popen([zstortest.zstor_binary(), "-c", self.cl.config, "store", "-f", p],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        if proc.returncode == 0:
            self.skipTest("the store finished before the interrupt")
        self.assertEqual(proc.returncode, 1)
        self.assertIn(b"interrupted", err)
        self.assertEqual(self.cl.zstor("check", "-f", p).out, b"")
        self.assertEqual(d.proc.poll(), None)

    def test_bad_input_on_the_socket(self):
        d = self.daemon()

        def conn():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            for _ in range(200):  # a full backlog: try again, as the CLI does
                try:
                    s.connect(self.sock)
                    return s
                except BlockingIOError:
                    time.sleep(0.05)
            raise AssertionError("cannot connect")
        s = conn()
        s.sendall(os.urandom(4096))
        s.close()
        s = conn()  # hello, then a frame that claims 1 GiB
        s.sendall(b"QSZD\x01\0\0\0" + b"\x01" + struct.pack("<I", 1 << 30))
        self.assertIn(b"request too large", s.recv(4096) + s.recv(4096))
        s.close()
        s = conn()  # hangs up mid-frame
        s.sendall(b"QSZD\x01\0\0\0\x01\x40\0\0\0abc")
        s.close()
        s = conn()  # a request without the stdout and stderr descriptors
        body = struct.pack("<I", 1) + struct.pack("<I", 4) + b"list" + struct.pack("<I", 1) + b"/" + b"\0"
        s.sendall(b"QSZD\x01\0\0\0\x01" + struct.pack("<I", len(body)) + body)
        got = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        self.assertIn(b"without the client's stdout and stderr", got)
        s.close()
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 1200 <= hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (1200, hard))
        n = 1000 if max(soft, min(hard, 1200)) >= 1200 else 300
        idle = [conn() for _ in range(n)]
        r = self.cl.zstor("list")
        self.assertEqual(r.rc, 0, r)
        for s in idle:
            s.close()
        self.assertIsNone(d.proc.poll())


class Queue(DaemonTest):
    extra = "max_concurrent_stores = 4\n"

    def test_notblocking_survives_a_backend_and_a_kill(self):
        files = {}
        for i in range(200):
            files[self.cl.write("q/f%03d" % i, os.urandom(2000 + i))] = None
        d = self.daemon()
        self.cl.data[0].kill()
        t0 = time.monotonic()
        for p in files:
            r = self.cl.zstor("store", "-n", "-f", p)
            self.assertEqual(r.rc, 0, r)
        per_file = (time.monotonic() - t0) / len(files)
        # the failures are visible, with their error, and retried
        deadline = time.monotonic() + 60
        while True:
            st = json.loads(self.cl.zstor("status", "--json").out)["daemon"]
            if st["queue_failing"] > 0:
                break
            self.assertLess(time.monotonic(), deadline, st)
            time.sleep(0.2)
        self.assertIn("store %s" % self.cl.path("q", "f"), st["failing"][0]["error"])
        self.assertGreaterEqual(st["failing"][0]["attempts"], 1)
        self.cl.data[0].start()
        deadline = time.monotonic() + 120
        while True:
            r = self.cl.zstor("status", "--json")
            if '"queue_length": 0' in r.text():
                break
            self.assertLess(time.monotonic(), deadline, r.text()[-2000:])
            time.sleep(0.5)
        for p in files:
            with open(p, "rb") as f:
                want = f.read()
            os.unlink(p)
            r = self.cl.zstor("retrieve", "-f", p)
            self.assertEqual(r.rc, 0, r)
            with open(p, "rb") as f:
                self.assertEqual(f.read(), want, p)
        sys.stderr.write("[-n store: %.1f ms per file through the CLI] " % (per_file * 1000))
        # kill -9 with items queued: a restart stores them
        more = [self.cl.write("r/g%03d" % i, os.urandom(1000 + i)) for i in range(100)]
        for m in self.cl.meta:  # nothing can be stored while the meta backends are down
            m.kill()
        r = self.cl.zstor("store", "-n", "-f", self.cl.path("r"))
        self.assertEqual(r.rc, 0, r)
        d.proc.kill()
        d.proc.wait(10)
        for m in self.cl.meta:
            m.start()
        self.daemon()
        deadline = time.monotonic() + 120
        while '"queue_length": 0' not in self.cl.zstor("status", "--json").text():
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.5)
        for p in more:
            r = self.cl.zstor("check", "-f", p)
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(len(r.out.strip()), 32, p)

    def test_failing_item_is_visible_and_does_not_block(self):
        self.daemon()
        bad = self.cl.write("x/bad", b"x")
        good = self.cl.write("x/good", b"y" * 100)
        os.chmod(bad, 0)
        if os.geteuid() == 0:  # root reads anything: make it a fifo-free unreadable case instead
            os.chmod(bad, 0o644)
            os.unlink(bad)
            os.mkfifo(bad)
        r = self.cl.zstor("store", "-n", "-f", bad)
        self.assertEqual(r.rc, 1, r)  # a fifo is not a file: refused at once
        r = self.cl.zstor("store", "-n", "-f", good)
        self.assertEqual(r.rc, 0, r)
        r = self.cl.zstor("store", "-n", "-f", self.cl.path("x", "missing"))
        self.assertEqual(r.rc, 1, r)
        self.assertIn("No such file", r.err)


class Upkeep(DaemonTest):
    groups = (3, 2, 2)  # a spare backend: full redundancy again without the lost one
    extra = "repair_interval_s = 1\nrepair_grace_s = 2\nscrub_interval_s = 2\nscrub_rate_mib_s = 0\n"

    def test_reload_rejects_a_bad_config_and_keeps_serving(self):
        d = self.daemon()
        with open(self.cl.config) as f:
            good = f.read()
        with open(self.cl.config, "w") as f:
            f.write(good + "\nthis is not toml\n")
        d.proc.send_signal(signal.SIGUSR1)
        d.wait_log("reload refused, the old config stays")
        with open(self.cl.config, "w") as f:
            f.write(good)
        self.assertEqual(self.cl.zstor("list").rc, 0)
        d.proc.send_signal(signal.SIGUSR1)
        d.wait_log("is config generation 2")

    def test_lost_backend_is_repaired_after_the_grace(self):
        p = self.cl.write("f.bin", os.urandom(500000))
        self.assertEqual(self.cl.zstor("store", "-f", p).rc, 0)
        d = self.daemon()
        r = self.cl.zstor("status", "-f", p)
        victim = next(b for b in self.cl.data if b.address in r.text())
        victim.kill()
        d.wait_log("repaired %s" % p, timeout=60)
        r = self.cl.zstor("status", "-f", p)
        self.assertNotIn("UNREACHABLE", r.text())
        self.assertIn("repairs: 1 done", self.cl.zstor("status").text())

    def test_corrupt_shard_is_found_by_scrub_and_rebuilt(self):
        p = self.cl.write("g.bin", os.urandom(300000))
        self.assertEqual(self.cl.zstor("store", "-f", p).rc, 0)
        # rewrite one shard value (sequential id 0) with one byte changed
        hit = False
        for b in self.cl.data:
            if not b.entries():
                continue
            with b.client() as c:
                key = (0).to_bytes(8, "little")
                v = bytearray(c.cmd("GET", key))
                v[64 + 11] ^= 0x01
                self.assertEqual(c.cmd("SET", key, bytes(v)), key)
            hit = True
            break
        self.assertTrue(hit)
        d = self.daemon()
        d.wait_log("repaired %s" % p, timeout=60)
        r = self.cl.zstor("scrub", "-f", p)
        self.assertEqual(r.rc, 0, r)

    def test_retrieve_heals_a_corrupt_shard(self):
        self.cl.extra = self.cl.extra.replace("scrub_interval_s = 2", "scrub_interval_s = 0")
        self.cl.write_config()
        p = self.cl.write("h.bin", os.urandom(300000))
        self.assertEqual(self.cl.zstor("store", "-f", p).rc, 0)
        # a data shard (positions 0..k-1): a retrieve reads those, parity only when needed
        st = json.loads(self.cl.zstor("status", "--json", "-f", p).out)
        b = next(b for b in self.cl.data if b.address == st["shards"][0]["address"])
        with b.client() as c:
            key = (0).to_bytes(8, "little")
            v = bytearray(c.cmd("GET", key))
            v[64 + 11] ^= 0x01
            self.assertEqual(c.cmd("SET", key, bytes(v)), key)
        d = self.daemon()
        out = os.path.join(self.cl.tmp, "h.out")
        r = self.cl.zstor("retrieve", "-f", p, "-o", out)
        self.assertEqual(r.rc, 0, r)
        d.wait_log("repaired %s (damaged shards" % p, timeout=60)
        r = self.cl.zstor("scrub", "-f", p)
        self.assertEqual(r.rc, 0, r)
        self.assertIn(b"all 6 shards", r.out)

    def test_replaced_meta_backend_gets_every_record(self):
        paths = [self.cl.write("m/%d" % i, os.urandom(1000 + i)) for i in range(30)]
        self.assertEqual(self.cl.zstor("store", "-f", self.cl.path("m")).rc, 0)
        d = self.daemon()
        spare = zstortest.Backend("meta", 9, tmp=self.cl.tmp, token="-spare" + os.urandom(2).hex())
        spare.start()
        self.cl.meta.append(spare)  # cleaned up with the cluster
        old = self.cl.meta[0]
        self.cl.write_config(meta=[spare] + self.cl.meta[1:4])
        d.proc.send_signal(signal.SIGUSR1)
        d.wait_log("is config generation 2")
        deadline = time.monotonic() + 60
        while spare.entries() < len(paths):
            self.assertLess(time.monotonic(), deadline, (spare.entries(), d.text()[-3000:]))
            time.sleep(0.3)
        old.kill()
        for m in self.cl.meta[1:3]:  # the new piece counts: 2 of 4 pieces are enough
            m.kill()
        for p in paths:
            r = self.cl.zstor("check", "-f", p)
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(len(r.out.strip()), 32)

    def test_backend_removed_from_the_config_is_moved_off(self):
        p = self.cl.write("r.bin", os.urandom(200000))
        self.assertEqual(self.cl.zstor("store", "-f", p).rc, 0)
        d = self.daemon()
        st = json.loads(self.cl.zstor("status", "--json", "-f", p).out)
        # a backend of the group of three: the others cannot lose one and keep the redundancy
        held = {s["address"] for s in st["shards"]}
        gone = next(b for b in self.cl.data if b.group == 0 and b.address in held)
        self.cl.write_config(data=[b for b in self.cl.data if b is not gone])
        d.proc.send_signal(signal.SIGUSR1)
        d.wait_log("repaired %s" % p, timeout=60)
        st = json.loads(self.cl.zstor("status", "--json", "-f", p).out)
        self.assertTrue(all(s["in_config"] for s in st["shards"]), st)
        self.assertNotIn(gone.address, [s["address"] for s in st["shards"]])

    def test_metrics_and_page(self):
        import socket as so
        s = so.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        self.cl.extra += 'prometheus_port = %d\nprometheus_bind = "127.0.0.1"\n' % port
        self.cl.write_config()
        self.daemon()
        p = self.cl.write("m.bin", os.urandom(123457))
        self.assertEqual(self.cl.zstor("store", "-f", p).rc, 0)
        body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
        self.assertIn('connection_status{address="', body)
        self.assertIn("zstor_bytes_stored 123457", body)
        self.assertIn('zstore_store_commands_finished{success="true"} 1', body)
        self.assertIn("zstore_store_commands_finished", body)
        page = urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=10).read().decode()
        self.assertIn('<table id="backends">', page)
        self.assertNotIn(self.cl.data_key, page + body)
        self.assertNotIn(self.cl.meta_key, page + body)
        self.scrape_with_prometheus(port)
        self.screenshot(port)

    def scrape_with_prometheus(self, port):
        """A real Prometheus scrapes /metrics and holds the 0-stor_v2 series."""
        import json
        import shutil
        prom = shutil.which("prometheus")
        if not prom:
            self.fail("prometheus is not installed (scripts/deps.sh installs it)")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        pport = s.getsockname()[1]
        s.close()
        pdir = os.path.join(self.cl.tmp, "prom")
        os.makedirs(pdir)
        with open(os.path.join(pdir, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: zstor\n"
                    "    static_configs:\n      - targets: ['127.0.0.1:%d']\n" % port)
        log = open(os.path.join(pdir, "log"), "wb")
        proc = subprocess.Popen([prom, "--config.file", os.path.join(pdir, "prometheus.yml"),
                                 "--storage.tsdb.path", os.path.join(pdir, "data"),
                                 "--web.listen-address", "127.0.0.1:%d" % pport],
                                stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    q = urllib.request.urlopen(
                        "http://127.0.0.1:%d/api/v1/query?query=connection_status" % pport,
                        timeout=5).read()
                    res = json.loads(q)["data"]["result"]
                    if len(res) == len(self.cl.meta) + len(self.cl.data):
                        break
                except OSError:
                    pass
                self.assertLess(time.monotonic(), deadline, "prometheus never scraped the daemon")
                time.sleep(0.5)
            t = json.loads(urllib.request.urlopen(
                "http://127.0.0.1:%d/api/v1/targets" % pport, timeout=5).read())
            target = t["data"]["activeTargets"][0]
            self.assertEqual(target["health"], "up", target)
            self.assertEqual(target["lastError"], "")
            types = {r["metric"]["backend_type"] for r in res}
            self.assertEqual(types, {"meta", "data"})
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            log.close()

    def screenshot(self, port):
        """Headless Chromium renders the status page; the screenshot shows the table."""
        import shutil
        chromium = shutil.which("chromium")
        if not chromium:
            self.fail("chromium is not installed (scripts/deps.sh installs it)")
        shot = os.path.join(self.cl.tmp, "status.png")
        prof = os.path.join(self.cl.tmp, "chromium-profile")
        proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                               "--user-data-dir=" + prof, "--window-size=1100,700",
                               "--screenshot=" + shot, "http://127.0.0.1:%d/" % port],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        self.assertTrue(os.path.exists(shot), proc.stderr[-2000:])
        with open(shot, "rb") as f:
            png = f.read()
        self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
        w, h = struct.unpack(">II", png[16:24])
        self.assertEqual((w, h), (1100, 700))
        if os.environ.get("ZSTOR_SCREENSHOT"):
            shutil.copy(shot, os.environ["ZSTOR_SCREENSHOT"])
        # the page's table as the browser built it
        dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                              "--user-data-dir=" + prof, "--dump-dom", "http://127.0.0.1:%d/" % port],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        self.assertIn(b'<table id="backends">', dom.stdout)
        self.assertEqual(dom.stdout.count(b"<tr><td>"), len(self.cl.meta) + len(self.cl.data))

    def test_eviction_deletes_only_stored_files_and_fs_stats_say_when_absent(self):
        cache = self.cl.path("cache")
        os.makedirs(cache)
        stored = [self.cl.write("cache/s%d" % i, os.urandom(400 << 10)) for i in range(3)]
        changed = self.cl.write("cache/changed", os.urandom(400 << 10))
        local = self.cl.write("cache/local-only", os.urandom(400 << 10))
        for p in stored + [changed]:
            self.assertEqual(self.cl.zstor("store", "-f", p).rc, 0)
        with open(changed, "r+b") as f:  # changed after its store: its checksum differs
            f.write(b"different")
        for i, p in enumerate(stored + [changed, local]):  # s0 is the least recently used
            os.utime(p, (1000000 + i, 1000000 + i))
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        self.cl.extra += ('zdb_data_dir_path = "%s"\nmax_zdb_data_dir_size = 1\n'
                          'zdbfs_mountpoint = "%s"\nprometheus_port = %d\nprometheus_bind = '
                          '"127.0.0.1"\n' % (cache, self.cl.path("no-mount"), port))
        self.cl.write_config()
        d = self.daemon()
        d.wait_log("eviction in %s" % cache)
        left = sorted(os.listdir(cache))
        # 2 MiB in, 1 MiB allowed: every stored file goes; the changed and local ones stay
        self.assertEqual(left, ["changed", "local-only"], d.text()[-2000:])
        for p in stored:  # and they come back
            self.assertEqual(self.cl.zstor("retrieve", "-f", p).rc, 0)
        time.sleep(1.5)
        body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
        self.assertIn("zstor_fs_stats_up 0", body)
        self.assertNotIn("fs_fuse_reqs", body)
        self.assertIn("data_dir_files_evicted 3", body)

    def test_fs_stats_of_a_real_zdbfs_mount(self):
        if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
            self.skipTest("needs root and /dev/fuse")
        import zdbfstest
        import zdbtest
        z = zdbtest.Zdb(tmpdir=self.cl.path("fs-zdb"))
        z.start()
        self.addCleanup(z.cleanup)
        m = zdbfstest.Mount(z, self.cl.tmp, ["autons"])
        self.addCleanup(m.cleanup)
        m.start()
        with open(os.path.join(m.path, "f"), "wb") as f:
            f.write(os.urandom(300000))
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        self.cl.extra += ('zdbfs_mountpoint = "%s"\nprometheus_port = %d\nprometheus_bind = '
                          '"127.0.0.1"\n' % (m.path, port))
        self.cl.write_config()
        self.daemon()
        deadline = time.monotonic() + 20
        while True:
            body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
            if "zstor_fs_stats_up 1" in body or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        self.assertIn("zstor_fs_stats_up 1", body)
        written = [l for l in body.splitlines() if l.startswith("fs_bytes_written")]
        self.assertTrue(written and int(float(written[0].split()[-1])) >= 300000, written)
        reqs = [l for l in body.splitlines() if l.startswith("fs_fuse_reqs")]
        self.assertTrue(reqs and int(float(reqs[0].split()[-1])) > 0, reqs)

    def test_readiness_is_notified(self):
        ns = os.path.join(self.cl.tmp, "notify.sock")
        r = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        r.bind(ns)
        r.settimeout(30)
        os.environ["NOTIFY_SOCKET"] = ns
        try:
            d = self.daemon()
        finally:
            del os.environ["NOTIFY_SOCKET"]
        msg = r.recv(4096)
        self.assertIn(b"READY=1", msg)
        self.assertIn(b"MAINPID=%d" % d.proc.pid, msg)
        d.proc.send_signal(signal.SIGUSR1)
        self.assertIn(b"RELOADING=1", r.recv(4096))
        r.close()


class Grace(DaemonTest):
    groups = (3, 2, 2)
    health = 3600
    extra = "repair_interval_s = 1\nrepair_grace_s = 600\nscrub_interval_s = 0\n"

    def test_a_briefly_absent_backend_is_not_repaired_away(self):
        p = self.cl.write("t.bin", os.urandom(300000))
        self.assertEqual(self.cl.zstor("store", "-f", p).rc, 0)
        d = self.daemon()
        st = json.loads(self.cl.zstor("status", "--json", "-f", p).out)
        # a data shard's backend (a retrieve reads those), in the group of three if one is
        # there (a move is possible then: without the fix the shard would move)
        data_pos = [s["address"] for s in st["shards"] if s["index"] < 4]
        by_addr = {b.address: b for b in self.cl.data}
        away = next((by_addr[a] for a in data_pos if by_addr[a].group == 0), by_addr[data_pos[0]])
        away.kill()  # the daemon's last probe (at its start) still says it is up
        out = os.path.join(self.cl.tmp, "t.out")
        r = self.cl.zstor("retrieve", "-f", p, "-o", out)  # works from the others
        self.assertEqual(r.rc, 0, r)
        d.wait_log("has damaged shards, repairing it")  # the retrieve met the dead backend
        time.sleep(3.5)  # three repair passes
        self.assertNotIn("repaired %s" % p, d.text())
        self.assertNotIn("needed a repair", d.text())
        st2 = json.loads(self.cl.zstor("status", "--json", "-f", p).out)
        self.assertEqual([s["address"] for s in st["shards"]], [s["address"] for s in st2["shards"]])
        away.start()


if __name__ == "__main__":
    zstortest.main()
