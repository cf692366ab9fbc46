#!/usr/bin/env python3
"""The soak: a steady load of stores and retrieves through the zstor daemon on a grid of
zdb hosts (grid.py) while faults of every kind come and go; then everything heals, the
daemon restores full redundancy, and every acknowledged file is verified. Prints a summary
(operations, bytes verified, faults by kind, repairs, time to full redundancy after each
fault, anything lost: must be zero). Run by scripts/soak.sh MINUTES (default 20).

    tests/faults/soak.py --build build --minutes 20 [--seed N]
"""

import argparse
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import grid as gridmod  # noqa: E402
import zstortest  # noqa: E402


# the faults the soak draws from (QSFS_SOAK_FAULTS=kill,daemon,... narrows it)
KINDS = os.environ.get("QSFS_SOAK_FAULTS", "kill,pause,partition,delay,reset,corrupt,"
                       "blackhole,refuse,daemon,disk").split(",")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--minutes", type=float, default=20)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    os.environ.setdefault("ZDB_BIN", os.path.join(build, "zdb", "zdb"))
    os.environ.setdefault("ZSTOR_BIN", os.path.join(build, "zstor", "zstor"))
    if not gridmod.netns_available():
        print("soak: needs root and network namespaces")
        return 2
    rnd = random.Random(args.seed)
    print("soak: %.1f minutes, seed %d" % (args.minutes, args.seed))
    g = gridmod.Grid(groups=(3, 3, 2), proxies=True)
    sock = os.path.join(g.tmp, "zstor.sock")
    g.extra += ('socket = "%s"\nhealth_interval_s = 2\nrepair_interval_s = 5\n'
                'repair_grace_s = 10\nscrub_interval_s = 60\nscrub_rate_mib_s = 50\n' % sock)
    g.write_config()
    log = open(os.path.join(g.tmp, "daemon.log"), "ab")
    procs = {}

    def daemon_log():
        with open(os.path.join(g.tmp, "daemon.log"), errors="replace") as f:
            return f.read()

    def start_daemon():
        before = daemon_log().count(" serving ")
        procs["daemon"] = subprocess.Popen([zstortest.zstor_binary(), "-c", g.config, "monitor"],
                                           stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while daemon_log().count(" serving ") <= before:
            assert time.monotonic() < deadline, "daemon did not start"
            time.sleep(0.05)

    def daemon_status():
        deadline = time.monotonic() + 60
        while True:
            try:
                return json.loads(g.zstor("status", "--json").out)["daemon"]
            except (ValueError, KeyError):
                assert time.monotonic() < deadline, "no status from the daemon"
                time.sleep(0.5)

    def kill_daemon():
        procs["daemon"].kill()
        procs["daemon"].wait(30)
    start_daemon()
    ledger = {}
    refusals = {}  # why stores were refused (numbers and addresses as #)
    stats = {"stores": 0, "stores_refused": 0, "retrieves": 0, "retrieves_failed": 0,
             "wrong_bytes": 0, "bytes_stored": 0}
    faults = {}
    to_full = []
    try:
        end = time.monotonic() + args.minutes * 60
        active = None  # (kind, host, undo)
        next_fault = time.monotonic() + 5
        n = 0
        while time.monotonic() < end:
            n += 1
            path = g.path("s%06d" % n)
            size = rnd.choice([100, 5000, 80000, 400000, 2 << 20])
            data = rnd.randbytes(size)
            with open(path, "wb") as f:
                f.write(data)
            r = g.zstor("store", "-f", path)
            stats["stores"] += 1
            if r.rc == 0:
                ledger[path] = hashlib.sha256(data).hexdigest()
                stats["bytes_stored"] += size
            else:
                stats["stores_refused"] += 1
                import re
                last = (r.err.strip().splitlines() or ["(no message)"])[-1]
                why = re.sub(r"\d+\.\d+\.\d+\.\d+:\d+|s\d{6}|\d+", "#", last)[:200]
                refusals[why] = refusals.get(why, 0) + 1
            os.unlink(path)
            if ledger and rnd.random() < 0.5:
                p = rnd.choice(list(ledger))
                out = os.path.join(g.tmp, "out")
                r = g.zstor("retrieve", "-f", p, "-o", out)
                stats["retrieves"] += 1
                if r.rc != 0:
                    stats["retrieves_failed"] += 1
                else:
                    with open(out, "rb") as f:
                        if hashlib.sha256(f.read()).hexdigest() != ledger[p]:
                            stats["wrong_bytes"] += 1
                    os.unlink(out)
            now = time.monotonic()
            if now < next_fault:
                continue
            if active:  # heal the running fault, then time the way back to full redundancy
                kind, host, undo = active
                undo()
                t0 = time.monotonic()
                sample = rnd.sample(list(ledger), min(10, len(ledger)))
                while time.monotonic() - t0 < 120:
                    texts = [g.zstor("status", "-f", p).text() for p in sample]
                    if not any("UNREACHABLE" in t or "absent" in t or "not in the config" in t
                               for t in texts):
                        break
                    time.sleep(1)
                to_full.append((kind, time.monotonic() - t0))
                active = None
                next_fault = time.monotonic() + rnd.uniform(3, 8)
                continue
            host = rnd.choice(g.data + g.meta)
            kind = rnd.choice(KINDS)
            if host.role == "meta" and kind in ("kill", "partition", "pause", "disk"):
                kind = "delay"  # stores need every meta backend: slow it instead
            faults[kind] = faults.get(kind, 0) + 1
            if kind == "daemon":  # kill -9 of the zstor daemon (commands run in-process meanwhile)
                kill_daemon()
                active = (kind, None, start_daemon)
            elif kind == "kill":
                host.kill()
                active = (kind, host, host.start)
            elif kind == "pause":
                host.pause()
                active = (kind, host, host.resume)
            elif kind == "partition":
                host.partition()
                active = (kind, host, host.heal)
            elif kind == "delay":
                host.proxy.delay_ms = rnd.choice([50, 200, 800])
                active = (kind, host, host.proxy.heal)
            elif kind == "reset":
                host.proxy.reset_all()
                active = (kind, host, lambda: None)
            elif kind == "corrupt":
                host.proxy.corrupt_every = rnd.choice([500, 5000])
                active = (kind, host, host.proxy.heal)
            elif kind == "blackhole":
                host.proxy.blackhole = True
                active = (kind, host, host.proxy.heal)
            elif kind == "disk":  # its reads, writes and fsyncs fail with EIO
                host.disk_fail()
                active = (kind, host, host.disk_heal)
            elif kind == "refuse":
                host.proxy.refuse = True
                active = (kind, host, host.proxy.heal)
            next_fault = time.monotonic() + rnd.uniform(5, 20)  # how long the fault lasts
        if active:
            active[2]()
        # everything healed: let the daemon finish its repairs, then verify every file
        t0 = time.monotonic()
        while time.monotonic() - t0 < 300:
            st = daemon_status()
            if st["backends_unreachable"] == 0 and not st["repairing"] and st["queue_length"] == 0:
                break
            time.sleep(1)
        lost, corrupt, verified_bytes = [], [], 0
        for p, digest in ledger.items():
            out = os.path.join(g.tmp, "out")
            r = g.zstor("retrieve", "-f", p, "-o", out)
            if r.rc != 0:
                lost.append((p, r.err.strip()[-200:]))
                continue
            with open(out, "rb") as f:
                b = f.read()
            os.unlink(out)
            if hashlib.sha256(b).hexdigest() != digest:
                corrupt.append(p)
            else:
                verified_bytes += len(b)
        st = daemon_status()
        print("soak summary")
        print("  stores: %d (%d acknowledged, %d refused with an error), %.1f MiB stored"
              % (stats["stores"], len(ledger), stats["stores_refused"], stats["bytes_stored"] / 1048576))
        for why, count in sorted(refusals.items(), key=lambda kv: -kv[1])[:5]:
            print("    store refused x%d: %s" % (count, why))
        print("  retrieves during faults: %d (%d failed with an error, %d returned wrong bytes)"
              % (stats["retrieves"], stats["retrieves_failed"], stats["wrong_bytes"]))
        print("  faults injected: %s" % ", ".join("%s %d" % kv for kv in sorted(faults.items())))
        print("  repairs by the daemon (since its last start): %d done, %d failed, %d passes; scrub: %d files verified"
              % (st["repairs_succeeded"], st["repairs_failed"], st["repair_passes"], st["scrub_files"]))
        if to_full:
            ts = sorted(t for _, t in to_full)
            print("  time to full redundancy after a fault healed (sample of 10 files): median "
                  "%.1f s, max %.1f s (%s)" % (ts[len(ts) // 2], ts[-1],
                                               max(to_full, key=lambda x: x[1])[0]))
        print("  verified at the end: %d files, %.1f MiB; lost %d, corrupt %d"
              % (len(ledger) - len(lost) - len(corrupt), verified_bytes / 1048576, len(lost),
                 len(corrupt)))
        for p, e in lost[:10]:
            print("    lost %s: %s" % (p, e))
        # why repairs failed, most frequent first (from the daemon's log)
        import re
        reasons = {}
        with open(os.path.join(g.tmp, "daemon.log"), errors="replace") as f:
            for line in f:
                m = re.search(r"repair of \S+ \((.*?)\) failed, retried next pass: (.*)", line)
                if m:
                    why = re.sub(r"[0-9a-f]{32}|s\d{6}|\d+ s\b", "#", m.group(1) + " :: " + m.group(2))
                    reasons[why[:220]] = reasons.get(why[:220], 0) + 1
        for why, count in sorted(reasons.items(), key=lambda kv: -kv[1])[:5]:
            print("    repair failure x%d: %s" % (count, why))
        ok = not lost and not corrupt and stats["wrong_bytes"] == 0
        print("soak: %s" % ("PASS: nothing lost" if ok else "FAIL"))
        return 0 if ok else 1
    finally:
        daemon = procs.get("daemon")
        if daemon and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(60)
            except subprocess.TimeoutExpired:
                daemon.kill()
        log.close()
        g.cleanup()


if __name__ == "__main__":
    sys.exit(main())
