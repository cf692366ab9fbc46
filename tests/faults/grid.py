"""zdb backends as real hosts: each in a network namespace of its own, reached over a veth
pair, with the faults a storage grid sees (docs/faults.md).

    g = Grid(meta=4, groups=(2, 2, 2), proxies=True)   # needs root and `ip netns`
    g.data[0].kill(); g.data[0].restart()               # kill -9, then the same data again
    g.data[1].pause(); g.data[1].resume()               # SIGSTOP / SIGCONT
    g.data[2].partition(); g.data[2].heal()             # link down inside its namespace
    g.data[3].proxy.delay_ms = 300                       # faults in flight (proxy.py)
    g.data[4].disk_fail(); g.data[4].disk_heal()        # its reads, writes, fsyncs: EIO
    g.zstor("store", "-f", path)
    g.cleanup()                                          # processes, links, namespaces, tmpfs

Addresses are 10.<a>.<i>.1 (this side) and 10.<a>.<i>.2 (the host), with <a> picked per
grid among 200..249 from those no interface uses, so that concurrent grids do not collide; every namespace, link
and mount the grid made is removed by cleanup, also after a failure.
"""

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import zdbtest  # noqa: E402
import zstortest  # noqa: E402
from proxy import FaultProxy  # noqa: E402


def sh(*argv, check=True):
    r = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), r.stderr.decode().strip()))
    return r


def netns_available():
    if os.geteuid() != 0 or not shutil.which("ip"):
        return False
    name = "qsfs-probe-%d" % os.getpid()
    r = sh("ip", "netns", "add", name, check=False)
    if r.returncode != 0:
        return False
    sh("ip", "netns", "del", name, check=False)
    return True


def shim_path():
    build = zdbtest.BUILD_DIR or os.path.join(zdbtest.REPO_ROOT, "build")
    return os.path.join(os.path.abspath(build), "tests", "libqsfs_faultshim.so")


class Host:
    """One zdb on a host of its own."""

    def __init__(self, grid, index, role, group=None, disk_mb=None):
        self.grid, self.index, self.role, self.group = grid, index, role, group
        self.kind = "zdb"
        self.ns = ("m%d" if role == "meta" else "d%d") % index  # zdb namespace
        self.netns = "qsfs-%s-%d" % (grid.token, index)
        self.veth = "qf%s%d" % (grid.token[:6], index)  # at most 15 characters
        self.ip = "10.%d.%d.2" % (grid.octet, index + 1)
        self.gw = "10.%d.%d.1" % (grid.octet, index + 1)
        self.port = 9900
        self.dir = os.path.join(grid.tmp, "host%d" % index)
        os.makedirs(self.dir)
        self.mounted = False
        if disk_mb:  # a disk that fills
            sh("mount", "-t", "tmpfs", "-o", "size=%dm" % disk_mb, "tmpfs", self.dir)
            self.mounted = True
        self.faults = os.path.join(grid.tmp, "faults%d" % index)  # disk_fail's marker
        os.makedirs(self.faults)
        self.proc = None
        self.paused = False
        self.partitioned = False
        self.proxy = None
        self.created = False
        sh("ip", "netns", "add", self.netns)
        sh("ip", "link", "add", self.veth, "type", "veth", "peer", "name", self.veth + "p")
        sh("ip", "link", "set", self.veth + "p", "netns", self.netns)
        sh("ip", "addr", "add", self.gw + "/30", "dev", self.veth)
        sh("ip", "link", "set", self.veth, "up")
        self.nsexec("ip", "link", "set", "lo", "up")
        self.nsexec("ip", "addr", "add", self.ip + "/30", "dev", self.veth + "p")
        self.nsexec("ip", "link", "set", self.veth + "p", "up")
        if grid.proxies:
            self.proxy = FaultProxy((self.ip, self.port), seed=index)

    def nsexec(self, *argv, check=True):
        return sh(*self.enter(), *argv, check=check)

    def enter(self):
        """The command prefix that runs inside the host's network namespace. Not `ip netns
        exec`: that also makes a mount namespace, a copy of every mount of the moment, and
        with / private (no systemd) a FUSE mount copied there outlives its unmount (its
        zdbfs never gets the end of the session) while the host runs."""
        return ["nsenter", "--net=/run/netns/" + self.netns]

    @property
    def address(self):
        """What the config names: the proxy when there is one."""
        return self.proxy.address if self.proxy else "%s:%d" % (self.ip, self.port)

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def cmd(self, *args):
        r = subprocess.run(["redis-cli", "-h", self.ip, "-p", str(self.port)] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        return r.stdout.decode().strip()

    def start(self):
        log = open(os.path.join(self.grid.tmp, "zdb%d.log" % self.index), "ab")
        env = None
        shim = shim_path()
        if os.path.exists(shim):  # disk_fail() works through it (tests/faults/faultshim.c)
            env = dict(os.environ, LD_PRELOAD=shim, QSFS_FAULT_DIR=self.faults,
                       QSFS_FAULT_UNDER=self.dir + "/")
            env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
        self.proc = subprocess.Popen(
            self.enter() + [zdbtest.zdb_binary(), "--listen", self.ip,
             "--port", str(self.port), "--data", os.path.join(self.dir, "data"), "--index",
             os.path.join(self.dir, "index")], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            env=env)
        log.close()
        deadline = time.monotonic() + 30
        while self.cmd("PING") != "PONG":
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("zdb on host %d did not start" % self.index)
            time.sleep(0.05)
        if not self.created:
            assert self.cmd("NSNEW", self.ns) == "OK"
            if self.role == "data":
                assert self.cmd("NSSET", self.ns, "mode", "seq") == "OK"
            self.created = True
        self.paused = False
        return self

    def kill(self):
        """kill -9."""
        if self.alive:
            if self.paused:
                self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)
        self.paused = False

    def stop(self):
        if self.alive:
            if self.paused:
                self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.paused = False

    def restart(self):
        self.kill()
        return self.start()

    def pause(self):
        if self.alive and not self.paused:
            self.proc.send_signal(signal.SIGSTOP)
            self.paused = True

    def resume(self):
        if self.alive and self.paused:
            self.proc.send_signal(signal.SIGCONT)
            self.paused = False

    def disk_fail(self):
        """Every read, write and fsync of the host's files fails with EIO from now on."""
        if not os.path.exists(shim_path()):
            raise RuntimeError("the fault shim is not built: %s" % shim_path())
        open(os.path.join(self.faults, "io-fail"), "w").close()

    def disk_heal(self):
        try:
            os.unlink(os.path.join(self.faults, "io-fail"))
        except FileNotFoundError:
            pass

    def partition(self):
        """The host's link goes down: its packets go nowhere (open connections hang)."""
        self.nsexec("ip", "link", "set", self.veth + "p", "down")
        self.partitioned = True

    def heal(self):
        self.nsexec("ip", "link", "set", self.veth + "p", "up")
        self.partitioned = False
        if self.proxy:
            self.proxy.heal()

    def cleanup(self):
        self.resume()
        self.kill()
        if self.proxy:
            self.proxy.close()
        sh("ip", "link", "del", self.veth, check=False)
        sh("ip", "netns", "del", self.netns, check=False)
        if self.mounted:
            sh("umount", "-l", self.dir, check=False)


class Grid:
    """Meta and data hosts, a zstor config for them (zstortest.Cluster's), and zstor."""

    def __init__(self, meta=4, groups=(2, 2, 2), k=4, n=6, rg=1, rn=0, proxies=False,
                 disk_mb=None, extra=""):
        self.tmp = tempfile.mkdtemp(prefix="qsfs-grid-")
        self.token = os.urandom(3).hex()
        # a second octet no interface uses yet (another grid may be running)
        used = sh("ip", "-o", "addr").stdout.decode()
        free = [a for a in range(200, 250) if (" 10.%d." % a) not in used]
        if not free:
            raise RuntimeError("no free 10.200-249 address block for a grid")
        self.octet = random.Random(self.token).choice(free)
        self.proxies = proxies
        self.root = os.path.join(self.tmp, "root")
        os.makedirs(self.root)
        self.meta, self.data, self.hosts = [], [], []
        try:
            for i in range(meta):
                self.meta.append(Host(self, len(self.hosts), "meta"))
                self.hosts.append(self.meta[-1])
            for g, size in enumerate(groups):
                for _ in range(size):
                    h = Host(self, len(self.hosts), "data", group=g, disk_mb=disk_mb)
                    self.data.append(h)
                    self.hosts.append(h)
            for h in self.hosts:
                h.start()
        except BaseException:
            self.cleanup()
            raise
        self.k, self.n, self.rg, self.rn = k, n, rg, rn
        self.data_key = zstortest.key_hex()
        self.meta_key = zstortest.key_hex()
        # short timeouts: a partitioned host must cost seconds, not the 30 s default
        self.extra = ("connect_timeout_ms = 1000\nrequest_timeout_ms = 4000\nretries = 1\n"
                      + extra)
        self.config = os.path.join(self.tmp, "zstor.toml")
        self.write_config()

    def config_text(self, **kw):
        return zstortest.Cluster.config_text(self, **kw)

    def write_config(self, **kw):
        with open(self.config, "w") as f:
            f.write(self.config_text(**kw))

    def zstor(self, *args, timeout=300):
        return zstortest.Cluster.zstor(self, *args, timeout=timeout)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def cleanup(self):
        for h in self.hosts:
            try:
                h.cleanup()
            except Exception as e:  # keep removing the others
                sys.stderr.write("cleanup of host %d: %s\n" % (h.index, e))
        if not os.environ.get("QSFS_KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)


class Ledger:
    """Every acknowledged store: path -> the bytes it stored (their digest)."""

    def __init__(self):
        self.acked = {}
        self.failed_stores = 0
        self.messages = []  # what each store said on stderr

    def store(self, grid, path, data):
        import hashlib
        with open(path, "wb") as f:
            f.write(data)
        r = grid.zstor("store", "-f", path)
        self.messages.append(r.err)
        if r.rc == 0:
            self.acked[path] = hashlib.sha256(data).hexdigest()
        else:
            self.failed_stores += 1
            assert r.err.strip(), "a failed store must say why"
        return r.rc == 0

    def verify(self, grid, out_dir):
        """Retrieves every acknowledged file; returns (verified, lost, corrupt) lists."""
        import hashlib
        ok, lost, corrupt = [], [], []
        for path, digest in sorted(self.acked.items()):
            out = os.path.join(out_dir, "v-%d" % len(ok + lost + corrupt))
            r = grid.zstor("retrieve", "-f", path, "-o", out)
            if r.rc != 0:
                lost.append((path, r.err.strip()[-300:]))
                continue
            with open(out, "rb") as f:
                got = hashlib.sha256(f.read()).hexdigest()
            os.unlink(out)
            (ok if got == digest else corrupt).append(path)
        return ok, lost, corrupt
