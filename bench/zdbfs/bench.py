#!/usr/bin/env python3
"""zdbfs next to ext4, side by side in one run (ratios; the machine is shared and noisy).

    bench/zdbfs/bench.py [--build build-rel] [--dir /var/tmp] [--quick] [--opts nobatch,...]

Starts a zdb (its files under --dir, on the same disk as the ext4 directory) and a zdbfs
mount, then runs on both: dd write of 1 GiB (bs=1M, conv=fsync), dd read cold (caches
dropped) and warm, untar of 10,000 small files + sync, fio 4 KiB random reads (direct,
iodepth 16, 30 s), and an mdtest-like loop over 100,000 files (create, stat, remove).
Also records zdbfs's peak RSS. Needs root (drop_caches, FUSE) and fio. Prints a table in
Markdown (docs/zdbfs.md keeps the results)."""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import zdbtest  # noqa: E402
import zdbfstest  # noqa: E402


def drop_caches():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def dd(args):
    subprocess.run(["dd"] + args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_tar(path, n):
    rnd = random.Random(1)
    src = tempfile.mkdtemp(prefix="bench-src-")
    for i in range(n):
        d = os.path.join(src, "d%03d" % (i % 100))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "f%05d" % i), "wb") as f:
            f.write(rnd.randbytes(rnd.randint(100, 8000)))
    with tarfile.open(path, "w") as t:
        t.add(src, arcname=".")
    shutil.rmtree(src)


def fio_randread(directory, size_mb, seconds):
    r = subprocess.run(["fio", "--name=rr", "--directory=" + directory, "--rw=randread", "--bs=4k",
                        "--direct=1", "--ioengine=libaio", "--iodepth=16", "--size=%dM" % size_mb,
                        "--runtime=%d" % seconds, "--time_based", "--output-format=json"],
                       check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return json.loads(r.stdout)["jobs"][0]["read"]["iops"]


def mdtest(directory, n):
    d = os.path.join(directory, "md")
    os.makedirs(d)
    names = [os.path.join(d, "f%06d" % i) for i in range(n)]
    t = time.perf_counter()
    for p in names:
        os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
    create = n / (time.perf_counter() - t)
    drop_caches()
    t = time.perf_counter()
    for p in names:
        os.stat(p)
    stat = n / (time.perf_counter() - t)
    t = time.perf_counter()
    for p in names:
        os.unlink(p)
    remove = n / (time.perf_counter() - t)
    os.rmdir(d)
    return create, stat, remove


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-rel")
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    ap.add_argument("--opts", default="", help="more zdbfs -o options, comma-separated (A/B runs)")
    a = ap.parse_args()
    if not shutil.which("fio"):
        sys.exit("bench.py needs fio: apt-get install fio")
    zdbtest.BUILD_DIR = os.path.abspath(a.build)
    gib = 256 if a.quick else 1024
    nsmall = 2000 if a.quick else 10000
    nmd = 10000 if a.quick else 100000
    fio_s = 5 if a.quick else 30
    work = tempfile.mkdtemp(prefix="zdbfs-bench-", dir=a.dir)
    ext4 = os.path.join(work, "ext4")
    os.makedirs(ext4)
    tarball = os.path.join(work, "small.tar")
    make_tar(tarball, nsmall)
    z = zdbtest.Zdb(tmpdir=os.path.join(work, "zdb"))
    z.start()
    m = zdbfstest.Mount(z, work, ["autons"] + [o for o in a.opts.split(",") if o])
    rows = []
    try:
        m.start()
        targets = [("zdbfs", m.path), ("ext4", ext4)]
        res = {t: {} for t, _ in targets}
        for t, p in targets:
            f = os.path.join(p, "big")
            res[t]["write"] = gib / timed(lambda: dd(["if=/dev/zero", "of=" + f, "bs=1M", "count=%d" % gib,
                                                       "conv=fsync"]))
            drop_caches()
            res[t]["cold"] = gib / timed(lambda: dd(["if=" + f, "of=/dev/null", "bs=1M"]))
            res[t]["warm"] = gib / timed(lambda: dd(["if=" + f, "of=/dev/null", "bs=1M"]))
            os.unlink(f)
            u = os.path.join(p, "untar")
            os.makedirs(u)
            drop_caches()
            res[t]["untar"] = timed(lambda: subprocess.run(["sh", "-c", "tar -C '%s' -xf '%s' && sync" % (u, tarball)],
                                                           check=True))
            shutil.rmtree(u)
            drop_caches()
            res[t]["randread"] = fio_randread(p, 256 if a.quick else 1024, fio_s)
            for name in os.listdir(p):
                if name.startswith("rr."):
                    os.unlink(os.path.join(p, name))
            res[t]["create"], res[t]["stat"], res[t]["remove"] = mdtest(p, nmd)
        rss = rss_kib(m.proc.pid)
    finally:
        m.cleanup()
        z.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    zf, e4 = res["zdbfs"], res["ext4"]
    print("| test | zdbfs | ext4 | ratio |")
    print("|---|---|---|---|")
    for key, label, unit, higher in (
            ("write", "dd write %d MiB, bs=1M, conv=fsync" % gib, "MiB/s", True),
            ("cold", "dd read cold (caches dropped)", "MiB/s", True),
            ("warm", "dd read warm", "MiB/s", True),
            ("untar", "untar %d small files + sync" % nsmall, "s", False),
            ("randread", "fio 4 KiB random read, direct, iodepth 16", "IOPS", True),
            ("create", "create %d files" % nmd, "files/s", True),
            ("stat", "stat %d files (caches dropped)" % nmd, "files/s", True),
            ("remove", "remove %d files" % nmd, "files/s", True)):
        ratio = zf[key] / e4[key]
        fmt = "%.2f" if unit == "s" else "%.0f"
        print("| %s | %s %s | %s %s | %.2fx%s |" % (label, fmt % zf[key], unit, fmt % e4[key], unit, ratio,
                                                   "" if higher else " ext4's time"))
    print("\nzdbfs peak RSS: %.1f MiB" % (rss / 1024.0))


if __name__ == "__main__":
    main()
