#!/usr/bin/env python3
"""Fault scenarios on a grid of zdb hosts (grid.py), each checked against a ledger of every
acknowledged store: after the faults heal, every acknowledged file retrieves byte-identical;
while they last, a retrieve returns the right bytes or fails with a message, never wrong
bytes. Short mode (the default, run by ctest): a few files per scenario. Needs root and
network namespaces; skipped without them.

    tests/faults/test_faults.py [--build DIR] [-v] [Scenario.test_name]
"""

import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import grid as gridmod  # noqa: E402
import zstortest  # noqa: E402

HAVE_NETNS = gridmod.netns_available()
FILES = int(os.environ.get("QSFS_FAULT_FILES", "8"))


def payload(rnd, i):
    n = rnd.choice([1, 1000, 70000, 300000])
    return rnd.randbytes(n) if i % 2 else (b"text %d " % i) * (n // 8 + 1)


@unittest.skipUnless(HAVE_NETNS, "needs root and network namespaces")
class Scenario(unittest.TestCase):
    groups = (2, 2, 2)
    proxies = False
    disk_mb = None
    extra = ""

    def setUp(self):
        self.g = gridmod.Grid(groups=self.groups, proxies=self.proxies, disk_mb=self.disk_mb,
                              extra=self.extra)
        self.ledger = gridmod.Ledger()
        self.rnd = random.Random(int(os.environ.get("QSFS_FAULT_SEED", "1")))
        self.n = 0
        self.t0 = time.monotonic()

    def tearDown(self):
        self.g.cleanup()
        sys.stderr.write("[%.1f s] " % (time.monotonic() - self.t0))

    def store_some(self, count=FILES):
        ok = 0
        for _ in range(count):
            self.n += 1
            ok += self.ledger.store(self.g, self.g.path("f%04d" % self.n), payload(self.rnd, self.n))
        return ok

    def check_never_wrong(self):
        """Every acknowledged file: the right bytes, or a clear failure (faults still on)."""
        ok, lost, corrupt = self.ledger.verify(self.g, self.g.tmp)
        self.assertEqual(corrupt, [], "wrong bytes returned")
        for path, err in lost:
            self.assertTrue(err, "a failed retrieve must say why")
        return ok, lost

    def check_all_back(self):
        ok, lost, corrupt = self.ledger.verify(self.g, self.g.tmp)
        self.assertEqual((lost, corrupt), ([], []))
        self.assertGreater(len(ok), 0, "nothing was acknowledged: the scenario proves nothing")
        sys.stderr.write("[%d acked, %d refused, all verified] " %
                         (len(ok), self.ledger.failed_stores))


class Partition(Scenario):
    def test_partitioned_data_host(self):
        self.store_some()
        victim = self.g.data[0]
        victim.partition()
        self.check_never_wrong()   # readable from the others during the partition
        self.store_some()          # refused (no placement without it) or stored elsewhere
        victim.heal()
        self.store_some()
        self.check_all_back()

    def test_flapping_meta_host(self):
        m = self.g.meta[1]
        stop = threading.Event()

        def flap():
            while not stop.is_set():
                m.pause()
                time.sleep(0.4)
                m.resume()
                time.sleep(0.4)
        t = threading.Thread(target=flap)
        t.start()
        try:
            self.store_some()
            self.check_never_wrong()
        finally:
            stop.set()
            t.join()
            m.resume()
        self.store_some(2)
        self.check_all_back()


class InFlight(Scenario):
    proxies = True

    def test_slow_backend_and_resets(self):
        slow = self.g.data[1]
        slow.proxy.delay_ms = 150
        stop = threading.Event()

        def resets():
            while not stop.is_set():
                time.sleep(0.3)
                self.g.data[2].proxy.reset_all()
                self.g.meta[0].proxy.reset_all()
        t = threading.Thread(target=resets)
        t.start()
        try:
            self.store_some()
            self.check_never_wrong()
        finally:
            stop.set()
            t.join()
        slow.proxy.heal()
        self.check_all_back()

    def test_bytes_corrupted_in_flight(self):
        self.store_some(4)
        self.g.data[0].proxy.corrupt_every = 3000
        self.g.meta[2].proxy.corrupt_every = 3000
        self.store_some()
        self.check_never_wrong()
        self.g.data[0].proxy.heal()
        self.g.meta[2].proxy.heal()
        self.check_all_back()

    def test_blackholed_backend(self):
        """Connections accepted, nothing answered (a half-open peer): bounded, not a hang."""
        self.store_some(3)
        self.g.data[3].proxy.blackhole = True
        t0 = time.monotonic()
        self.check_never_wrong()
        self.store_some(2)
        self.assertLess(time.monotonic() - t0, 240, "a blackholed backend must cost bounded time")
        self.g.data[3].proxy.heal()
        self.check_all_back()


class Crashes(Scenario):
    groups = (3, 3, 2)  # one host down still leaves a placement

    def test_kill_and_restart_during_stores(self):
        for rnd in range(3):
            victim = self.rnd.choice(self.g.data)
            stop = threading.Event()

            def killer():
                time.sleep(self.rnd.uniform(0.05, 0.4))
                victim.kill()
            t = threading.Thread(target=killer)
            t.start()
            self.store_some(4)
            t.join()
            self.check_never_wrong()
            victim.start()
        self.check_all_back()

    def test_restore_after_losing_m_data_and_2_meta_hosts(self):
        self.store_some()
        for h in self.rnd.sample(self.g.data, 2) + self.rnd.sample(self.g.meta, 2):
            h.kill()
        ok, lost, corrupt = self.ledger.verify(self.g, self.g.tmp)
        self.assertEqual((lost, corrupt), ([], []))
        self.assertEqual(len(ok), len(self.ledger.acked))


class Losses(Scenario):
    proxies = True  # a lost host is one whose proxy refuses every connection: no restarts

    def test_every_loss_of_m_data_and_2_meta_hosts(self):
        """Every choice of n - k = 2 data hosts and 2 of the 4 meta hosts gone at once (15 x 6
        = 90 combinations): every acknowledged file still retrieves byte-identical."""
        import itertools
        self.store_some(3)
        self.assertEqual(len(self.ledger.acked), 3)
        m = self.g.n - self.g.k
        combos = [(d, mt) for d in itertools.combinations(self.g.data, m)
                  for mt in itertools.combinations(self.g.meta, 2)]
        self.assertEqual(len(combos), 90)
        failed = []
        for d, mt in combos:
            for h in d + mt:
                h.proxy.refuse = True
            ok, lost, corrupt = self.ledger.verify(self.g, self.g.tmp)
            for h in d + mt:
                h.proxy.heal()
            if lost or corrupt:
                failed.append(([h.index for h in d + mt], lost, corrupt))
        self.assertEqual(failed, [])
        sys.stderr.write("[%d combinations, %d files each] " % (len(combos), 3))


class Disks(Scenario):
    disk_mb = 6

    def test_disk_fills_mid_store(self):
        big = 0
        for i in range(12):  # about 2 MiB of shards per host per file: the disks fill
            self.n += 1
            data = self.rnd.randbytes(3 << 20)
            if self.ledger.store(self.g, self.g.path("big%02d" % i), data):
                big += 1
        self.assertGreater(self.ledger.failed_stores, 0, "the disks never filled")
        self.check_all_back()


class FailingDisk(Scenario):
    groups = (3, 2, 2)  # one host away still leaves a placement

    def test_disk_fails_under_stores_and_retrieves(self):
        """A data host whose disk fails (every read, write and fsync of its files: EIO) while
        zstor stores and retrieves: stores are refused with a reason or land elsewhere,
        retrieves never return wrong bytes (its shards are lost, the others suffice); the
        host's zdb keeps answering, and everything reads back once the disk is replaced."""
        self.store_some(4)
        victim = self.g.data[0]
        victim.disk_fail()
        try:
            before = len(self.ledger.messages)
            stored = self.store_some(6)
            said = "".join(self.ledger.messages[before:])
            ok, lost = self.check_never_wrong()
            self.assertEqual(lost, [], "one failed disk is within the redundancy")
            self.assertEqual(victim.cmd("PING"), "PONG", "zdb must survive its disk")
        finally:
            victim.disk_heal()
        self.assertEqual(stored, 6, "stores around a failed disk must work (group of 3)")
        self.assertIn("placing it again without that backend", said)
        self.store_some(2)
        self.check_all_back()
        with open(os.path.join(self.g.tmp, "zdb%d.log" % victim.index), "rb") as f:
            self.assertIn(b"Input/output error", f.read(), "the disk never failed")


class Daemon(Scenario):
    groups = (3, 2, 2)

    def test_daemon_repairs_around_a_partition(self):
        sock = os.path.join(self.g.tmp, "zstor.sock")
        self.g.extra += ('socket = "%s"\nhealth_interval_s = 1\nrepair_interval_s = 1\n'
                         'repair_grace_s = 2\nscrub_interval_s = 0\n' % sock)
        self.g.write_config()
        log = open(os.path.join(self.g.tmp, "daemon.log"), "wb")
        d = subprocess.Popen([zstortest.zstor_binary(), "-c", self.g.config, "monitor"],
                             stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 30
            while not os.path.exists(sock):
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
            self.store_some()
            # a host of the group of three (the others cannot spare one) that holds shards
            held = " ".join(self.g.zstor("status", "-f", p).text() for p in self.ledger.acked)
            victim = max((h for h in self.g.data if h.group == 0),
                         key=lambda h: held.count(h.address + "/"))
            self.assertIn(victim.address + "/", held)
            victim.partition()
            deadline = time.monotonic() + 180
            while True:  # every file with a shard there regains full redundancy elsewhere
                r = self.g.zstor("status")
                if b"repairs:" in r.out and b" 0 done" not in r.out:
                    held = [self.g.zstor("status", "-f", p).text() for p in self.ledger.acked]
                    if not any(victim.address in h for h in held):
                        break
                if time.monotonic() > deadline:
                    with open(os.path.join(self.g.tmp, "daemon.log")) as f:
                        self.fail("not repaired in time:\n%s\n%s" % (r.text(), f.read()[-5000:]))
                time.sleep(0.5)
            self.check_never_wrong()
            victim.heal()
            self.check_all_back()
        finally:
            d.send_signal(signal.SIGTERM)
            d.wait(60)
            log.close()


def main():
    args = sys.argv[1:]
    if "--build" in args:
        i = args.index("--build")
        build = os.path.abspath(args[i + 1])
        del args[i:i + 2]
        os.environ.setdefault("ZDB_BIN", os.path.join(build, "zdb", "zdb"))
        os.environ.setdefault("ZSTOR_BIN", os.path.join(build, "zstor", "zstor"))
    unittest.main(argv=[sys.argv[0]] + args)


if __name__ == "__main__":
    main()
