"""zstor with damaged backends: corrupt shards (bytes flipped in a zdb data file on disk,
or a shard replaced through a direct SET) are detected, reported and worked around;
scrub finds them; rebuild regenerates them and moves shards off a backend that is gone,
restoring full redundancy."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zstortest  # noqa: E402
from zstortest import FakeZdb, ZstorTestCase, b2  # noqa: E402

FAST = "retries = 1\nretry_backoff_ms = 20\nconnect_timeout_ms = 2000"


def shard_positions(c, path):
    """status -f --json: [(index, address, reachable)]."""
    r = c.zstor("status", "-f", path, "--json")
    assert r.rc == 0, repr(r)
    doc = json.loads(r.text())
    return doc, [(s["index"], s["address"], s["reachable"]) for s in doc["shards"]]


def backend_of(c, address):
    for b in c.data:
        if b.address == address:
            return b
    raise AssertionError("no backend %s" % address)


def flip_on_disk(b):
    """Flips one payload byte of the first shard in the backend's zdb data file."""
    path = b.zdb.data_file(0, b.ns)
    with open(path, "r+b") as f:
        blob = f.read()
        at = blob.find(b"QSSH")
        assert at >= 0, "no shard in %s" % path
        f.seek(at + 64 + 37)
        byte = blob[at + 64 + 37]
        f.write(bytes([byte ^ 0x5A]))


def flip_by_set(b):
    """Rewrites the backend's first shard (sequential id 0) with one byte changed."""
    with b.client() as cl:
        key = (0).to_bytes(8, "little")
        v = bytearray(cl.cmd("GET", key))
        v[64 + 11] ^= 0x01
        assert cl.cmd("SET", key, bytes(v)) == key


class Repair(ZstorTestCase):
    def test_corrupt_shards_are_reported_and_skipped(self):
        c = self.new_cluster(extra=FAST)
        data = os.urandom(2 * 1024 * 1024 + 999)
        p = c.write("c.bin", data)
        self.assertOk(c.zstor("store", "-f", p))
        doc, shards = shard_positions(c, p)
        # shard 0 corrupted on disk, shard 1 through the protocol: two of six, the most 4+2 takes
        flip_on_disk(backend_of(c, shards[0][1]))
        flip_by_set(backend_of(c, shards[1][1]))
        os.unlink(p)
        r = c.zstor("retrieve", "-f", p)
        self.assertOk(r)
        with open(p, "rb") as f:
            self.assertEqual(f.read(), data)
        # data shards are read first (equally healthy backends), so both are met and named
        self.assertRegex(r.err, r"shard 0 \(zdb [^)]*\) is (corrupt|unavailable)")
        self.assertRegex(r.err, r"shard 1 \(zdb [^)]*\) is corrupt")
        # scrub names both, rebuild regenerates them in place, scrub is clean again
        s = c.zstor("scrub", "-f", p)
        self.assertEqual(s.rc, 1, repr(s))
        self.assertIn("shard 0:", s.text())
        self.assertIn("shard 1:", s.text())
        self.assertIn("2 of 6 shards damaged", s.err)
        rb = c.zstor("rebuild", "-f", p)
        self.assertOk(rb)
        self.assertIn("0 shard positions moved", rb.text())
        self.assertOk(c.zstor("scrub", "-f", p))
        # the repaired shards carry the data again: lose two other backends
        backend_of(c, shards[4][1]).kill()
        backend_of(c, shards[5][1]).kill()
        os.unlink(p)
        r = c.zstor("retrieve", "-f", p)
        self.assertOk(r)
        with open(p, "rb") as f:
            self.assertEqual(f.read(), data)

    def test_slow_shard_is_replaced(self):
        # data backends that are in-process fakes, so that one can be made slow
        c = self.new_cluster(extra=FAST)
        fakes = [FakeZdb() for _ in c.data]
        for f in fakes:
            self.addCleanup(f.close)
        data = [type("B", (), {"address": f.address, "ns": f.ns, "kind": "zdb",
                               "group": c.data[i].group})() for i, f in enumerate(fakes)]
        cfg = c.write_config(data=data)
        payload = os.urandom(3 * 1024 * 1024)
        p = c.write("slow.bin", payload)
        self.assertOk(c.zstor("store", "-f", p, config=cfg))
        _, shards = shard_positions(c, p)
        slow = [f for f in fakes if f.address == shards[0][1]][0]  # data shard 0: asked first
        slow.get_delay = 2.0
        os.unlink(p)
        r = c.zstor("-d", "retrieve", "-f", p, config=cfg)
        self.assertOk(r)
        self.assertIn("waits for a slow shard, asking another", r.err)
        with open(p, "rb") as f:
            self.assertEqual(f.read(), payload)

    def test_three_bad_shards_fail_clearly(self):
        c = self.new_cluster(extra=FAST)
        p = c.write("t.bin", os.urandom(300000))
        self.assertOk(c.zstor("store", "-f", p))
        _, shards = shard_positions(c, p)
        for i in range(3):
            flip_by_set(backend_of(c, shards[i][1]))
        os.unlink(p)
        r = c.zstor("retrieve", "-f", p)
        self.assertFails(r, "retrieve", "t.bin", "need 4")
        self.assertFalse(os.path.exists(p))
        self.assertEqual([f for f in os.listdir(c.root) if "zstor" in f], [])  # no temp file

    def test_rebuild_after_backend_gone(self):
        # 8 data backends in 4 groups, so that 6 shards still fit when one backend is gone
        c = self.new_cluster(groups=(2, 2, 2, 2), extra=FAST)
        files = {c.write("r%d.bin" % i, os.urandom(700000 + i)): None for i in range(3)}
        c.write("rt/a", b"a" * 5000)
        c.write("rt/b/c", b"c" * 70000)
        for p in list(files):
            with open(p, "rb") as f:
                files[p] = f.read()
            self.assertOk(c.zstor("store", "-f", p))
        self.assertOk(c.zstor("store", "-f", c.path("rt")))
        files[c.path("rt/a")] = b"a" * 5000
        files[c.path("rt/b/c")] = b"c" * 70000
        first = list(files)[0]
        _, shards = shard_positions(c, first)
        gone = backend_of(c, shards[2][1])
        gone.kill()
        # a new store places around the dead backend
        fresh = c.write("fresh.bin", os.urandom(120000))
        self.assertOk(c.zstor("store", "-f", fresh))
        _, placed = shard_positions(c, fresh)
        self.assertNotIn(gone.address, [s[1] for s in placed])
        for p in files:
            _, before = shard_positions(c, p)
            if p == first:
                self.assertFalse(before[2][2])
            # by path, or by metadata key for one of them
            if p.endswith("r1.bin"):
                key = "/zstortest/meta/" + b2(os.path.relpath(p, c.root).encode())
                r = c.zstor("rebuild", "-k", key)
            else:
                r = c.zstor("rebuild", "-f", p)
            self.assertOk(r)
            _, after = shard_positions(c, p)
            self.assertTrue(all(s[2] for s in after), after)
            self.assertNotIn(gone.address, [s[1] for s in after])
            self.assertEqual(len({s[1] for s in after}), 6)
            self.assertEqual(c.zstor("check", "-f", p).text().strip(), b2(files[p]))
        # full redundancy again: any two more data backends may go
        alive = [b for b in c.data if b.alive]
        alive[0].kill()
        alive[-1].kill()
        for p, data in files.items():
            os.unlink(p)
            self.assertOk(c.zstor("retrieve", "-f", p))
            with open(p, "rb") as f:
                self.assertEqual(f.read(), data)
        # status shows the backend that is gone
        st = c.zstor("status", "--json")
        rows = json.loads(st.text())["backends"]
        self.assertEqual(sum(1 for b in rows if not b["reachable"]), 3)

    def test_rebuild_with_nothing_to_do(self):
        c = self.new_cluster(extra=FAST)
        p = c.write("n.bin", os.urandom(50000))
        self.assertOk(c.zstor("store", "-f", p))
        before = c.entries()
        r = c.zstor("rebuild", "-f", p)
        self.assertOk(r)
        self.assertIn("0 shard positions moved, 0 shard values written", r.text())
        self.assertEqual(c.entries(), before)

    def test_rebuild_reencodes_for_new_shard_counts(self):
        c = self.new_cluster(extra=FAST)
        data = os.urandom(1200000)
        p = c.write("k.bin", data)
        self.assertOk(c.zstor("store", "-f", p))
        c.k, c.n = 3, 6
        c.write_config()
        r = c.zstor("rebuild", "-f", p)
        self.assertOk(r)
        self.assertIn("re-encoded", r.text())
        doc, _ = shard_positions(c, p)
        self.assertEqual((doc["data_shards"], doc["parity_shards"]), (3, 3))
        self.assertEqual(sum(c.entries()[("data", b.index)] for b in c.data), 6 * 2)
        for b in c.data[:3]:
            b.kill()
        os.unlink(p)
        self.assertOk(c.zstor("retrieve", "-f", p))
        with open(p, "rb") as f:
            self.assertEqual(f.read(), data)


if __name__ == "__main__":
    zstortest.main()
