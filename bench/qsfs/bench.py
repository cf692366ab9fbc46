#!/usr/bin/env python3
"""The whole QSFS stack next to zdbfs alone, side by side in one run (ratios: the machine
is shared and noisy).

    bench/qsfs/bench.py [--build build-rel] [--dir /var/tmp] [--size-mib 1024] [--rpo-runs 3]

Starts 10 zdb backends (4 meta, 6 data in 3 groups, 4+2; standing for remote hosts, they
live in /dev/shm at SCHED_IDLE unless --backends-compete puts them under --dir at normal
priority), a qsfs frontend
(`qsfs up`) over them, and a plain zdb + zdbfs mount on the same disk. Measures:
- dd write of --size-mib (bs=1M, conv=fsync) through zdbfs alone and through the stack;
- the time until the stack has stored all of it (`zstor checkpoint` after the dd);
- upload latency of a 64 MiB data file: from its close (NSJUMP) to `zstor check` naming it;
- cold read of the file after every stored data file was evicted (dd, caches dropped),
  next to `zstor retrieve` of the same data files;
- the recovery point: a writer appends a numbered, fsync'd record every 50 ms; all three
  local processes are killed with SIGKILL at a random moment, the frontend is restored
  into a fresh directory, and the newest record found is compared with the newest one
  written (repeated --rpo-runs times).
Needs root (FUSE, drop_caches). Prints Markdown (docs/qsfs.md keeps the results)."""
import argparse
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import zdbtest  # noqa: E402
import zdbfstest  # noqa: E402
import zstortest  # noqa: E402


def drop_caches():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def dd_rate(args, nbytes):
    t = time.perf_counter()
    subprocess.run(["dd"] + args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return nbytes / (time.perf_counter() - t) / 1e6


class Stack:
    def __init__(self, cluster, base, build, prefix):
        self.build = build
        self.base = base
        self.dir = os.path.join(base, "state")
        self.mnt = os.path.join(base, "mnt")
        self.config = os.path.join(base, "qsfs.toml")
        os.makedirs(base, exist_ok=True)
        table = "[qsfs]\ndir = \"%s\"\nmountpoint = \"%s\"\n" % (self.dir, self.mnt)
        with open(self.config, "w") as f:
            # a prefix of its own: frontends on the same backends must not share names
            f.write(cluster.config_text(drop="root =", extra="health_interval_s = 2\n" + table)
                    .replace('prefix = "zstortest"', 'prefix = "%s"' % prefix))

    def qsfs(self, *args, check=True):
        p = subprocess.run([os.path.join(self.build, "qsfs", "qsfs"), "-c", self.config] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1800)
        if check and p.returncode:
            raise RuntimeError("qsfs %s: %s" % (args, p.stdout.decode()))
        return p.stdout.decode()

    def zstor(self, *args, check=True):
        p = subprocess.run([os.path.join(self.build, "zstor", "zstor"), "-c", self.config] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1800)
        if check and p.returncode:
            raise RuntimeError("zstor %s: %s" % (args, p.stdout.decode()))
        return p.stdout.decode()

    def nsjump(self, ns):
        with zdbtest.Client(unix=os.path.join(self.dir, "zdb.sock")) as c:
            c.cmd("SELECT", ns)
            c.cmd("NSJUMP")

    def pid(self, name):
        with open(os.path.join(self.dir, name + ".pid")) as f:
            return int(f.read())

    def kill_all(self):
        for name in ("zdbfs", "zdb", "zstor"):
            try:
                os.kill(self.pid(name), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        time.sleep(0.3)
        subprocess.run(["fusermount3", "-u", "-z", self.mnt], stderr=subprocess.DEVNULL)

    def down(self):
        self.qsfs("down", check=False)
        self.kill_all()


def data_files(d):
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.startswith("d"))


def upload_latency(st, runs=3):
    """64 MiB written and fsync'd, the data file closed (NSJUMP): seconds until stored."""
    out = []
    ddir = os.path.join(st.dir, "data", "zdbfs-data")
    for i in range(runs):
        with open(os.path.join(st.mnt, "lat%d" % i), "wb") as f:
            f.write(os.urandom(64 << 20))
            f.flush()
            os.fsync(f.fileno())
        closed = data_files(ddir)[-1]
        while len(data_files(ddir)) and data_files(ddir)[-1] == closed:
            st.nsjump("zdbfs-data")
            time.sleep(0.01)
        t0 = time.perf_counter()
        while not st.zstor("check", "-f", closed, check=False).strip():
            time.sleep(0.05)
        out.append(time.perf_counter() - t0)
    return sorted(out)[len(out) // 2]


def rpo_run(cluster, base, build, seed):
    """Seconds of fsync'd records lost when the machine dies at a random moment."""
    prefix = "rpo-%d-%s" % (seed, os.urandom(3).hex())
    st = Stack(cluster, base, build, prefix)
    st.qsfs("up")
    path = os.path.join(st.mnt, "ledger")
    rnd = random.Random(seed)
    kill_at = time.monotonic() + rnd.uniform(15, 30)
    written = {}
    with open(path, "wb") as f:
        n = 0
        while time.monotonic() < kill_at:
            n += 1
            f.write(struct.pack("<Qd", n, time.time()) + os.urandom(4080))
            f.flush()
            os.fsync(f.fileno())
            written[n] = time.time()
            time.sleep(0.05)
    st.kill_all()
    t_dead = time.time()
    shutil.rmtree(st.dir)
    st2 = Stack(cluster, base + "-r", build, prefix)
    last = 0
    try:
        st2.qsfs("restore")
        with open(os.path.join(st2.mnt, "ledger"), "rb") as f:
            while True:
                rec = f.read(4096)
                if len(rec) < 4096:
                    break
                k, _ = struct.unpack("<Qd", rec[:16])
                if k != last + 1:
                    break
                last = k
    finally:
        st2.down()
    lost_s = t_dead - written[last] if last else t_dead - written[1]
    return n, last, lost_s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-rel")
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--rpo-runs", type=int, default=3)
    ap.add_argument("--stack-first", action="store_true",
                    help="the stack writes first in the first round (BABA)")
    ap.add_argument("--backends-compete", action="store_true",
                    help="backends on --dir's disk at normal priority (all on one machine)")
    o = ap.parse_args()
    build = os.path.abspath(o.build)
    zdbtest.BUILD_DIR = build
    os.environ["ZSTOR_BIN"] = os.path.join(build, "zstor", "zstor")
    work = tempfile.mkdtemp(prefix="qsfs-bench-", dir=o.dir)
    # the backends stand for remote hosts: they must not take this machine's disk or CPU
    # from the writer (on a grid they use none of either): tmpfs and SCHED_IDLE, unless
    # --backends-compete
    btmp = work if o.backends_compete else tempfile.mkdtemp(prefix="qsfs-bench-", dir="/dev/shm")
    cluster = zstortest.Cluster(tmp=btmp)
    if not o.backends_compete:
        for b in cluster.meta + cluster.data:
            os.sched_setscheduler(b.zdb.proc.pid, os.SCHED_IDLE, os.sched_param(0))
    size = o.size_mib << 20
    rows = []
    mount = zdb = None
    st = None
    try:
        # one random source file for both (in the page cache: dd reads it at memory speed)
        src = os.path.join(work, "src")
        with open(src, "wb") as f:
            for _ in range(o.size_mib):
                f.write(os.urandom(1 << 20))
        # zdbfs alone and the stack, both mounted; the writes alternate, 3 rounds, and the
        # stack's uploads finish (checkpoint) before the next round starts
        zdb = zdbtest.Zdb(tmpdir=os.path.join(work, "plain-zdb"))
        zdb.start()
        mount = zdbfstest.Mount(zdb, work, opts=["autons"]).start()
        st = Stack(cluster, os.path.join(work, "a"), build, "bench-a")
        st.qsfs("up")
        plain, stack, stored, alone = [], [], [], []
        for r in range(3):
            # the order alternates: the first write of a pair finds the page cache clean,
            # the second meets the first one's write-back
            def one_plain():
                plain.append(dd_rate(["if=" + src, "of=" + os.path.join(mount.path, "f%d" % r),
                                      "bs=1M", "conv=fsync"], size))

            def one_stack():
                t = time.perf_counter()
                stack.append(dd_rate(["if=" + src, "of=" + os.path.join(st.mnt, "f%d" % r),
                                      "bs=1M", "conv=fsync"], size))
                alone.append(time.perf_counter() - t)
                st.zstor("checkpoint", "--timeout", "1800")
                stored.append(time.perf_counter() - t)
            first_plain = (r % 2 == 0) != o.stack_first
            for fn in ((one_plain, one_stack) if first_plain else (one_stack, one_plain)):
                fn()
                subprocess.run(["sync"], check=True)
        mount.stop()
        mount = None
        zdb.stop()
        zdb = None
        med = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
        w_plain, w_stack = med(plain), med(stack)
        rows.append(("dd write %d MiB of random data, bs=1M, conv=fsync, vs zdbfs alone "
                     "(median of 3 alternating rounds: stack %s, alone %s)"
                     % (o.size_mib, "/".join("%.0f" % x for x in stack),
                        "/".join("%.0f" % x for x in plain)),
                     "%.0f MB/s" % w_stack, "%.0f MB/s" % w_plain, "%.2fx" % (w_stack / w_plain)))
        t_stored, t_write = med(stored), med(alone)
        rows.append(("written and stored on the backends (dd + checkpoint)", "%.1f s" % t_stored,
                     "dd alone %.1f s" % t_write, "%.0f MB/s end to end" % (size / t_stored / 1e6)))
        lat = upload_latency(st)
        rows.append(("upload latency of a closed 64 MiB data file (median of 3)", "%.2f s" % lat,
                     "", ""))
        st.nsjump("zdbfs-data")
        st.zstor("checkpoint", "--timeout", "1800")
        st.zstor("evict", "--all")
        ddir = os.path.join(st.dir, "data", "zdbfs-data")
        drop_caches()
        r_stack = dd_rate(["if=" + os.path.join(st.mnt, "f0"), "of=/dev/null", "bs=1M"], size)
        # zstor retrieve of the same data files (they are local again now: retrieve to copies)
        files = data_files(ddir)[:-1]
        total = sum(os.path.getsize(f) for f in files)
        outdir = os.path.join(work, "retrieved")
        os.makedirs(outdir)
        t = time.perf_counter()
        for f in files:
            st.zstor("retrieve", "-f", f, "-o", os.path.join(outdir, os.path.basename(f)))
        r_zstor = total / (time.perf_counter() - t) / 1e6
        shutil.rmtree(outdir)
        rows.append(("cold read after eviction (dd) vs zstor retrieve of the data files",
                     "%.0f MB/s" % r_stack, "%.0f MB/s" % r_zstor, "%.2fx" % (r_stack / r_zstor)))
        st.down()
        st = None
        for i in range(o.rpo_runs):
            n, last, lost = rpo_run(cluster, os.path.join(work, "rpo%d" % i), build, i)
            rows.append(("recovery point run %d: records written / found, seconds lost" % (i + 1),
                         "%d / %d" % (n, last), "%.1f s" % lost, ""))
    finally:
        if st:
            st.down()
        if mount:
            mount.stop()
        if zdb:
            zdb.stop()
        cluster.cleanup()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(btmp, ignore_errors=True)
    print("| measure | qsfs stack | reference | ratio |")
    print("|---|---|---|---|")
    for r in rows:
        print("| %s |" % " | ".join(r))


if __name__ == "__main__":
    main()
