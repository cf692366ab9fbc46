"""zstor store and retrieve against a cluster of real zdb servers (4 meta + 6 data in 3
groups, 4+2): a mix of files survives any 2 data and any 2 meta backends lost, nothing
readable reaches a backend, identical content is not uploaded twice, --delete."""

import json
import os
import random
import stat
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zstortest  # noqa: E402
from zstortest import ZstorTestCase, b2  # noqa: E402

# dead backends are noticed fast (the defaults are tested in test_defaults_wait_for_retries)
FAST = "retries = 1\nretry_backoff_ms = 20\nconnect_timeout_ms = 2000"
MARKER = b"QSFS-MARKER-7f3a9c"


def mix(c):
    """Writes the test files; returns {path: bytes}."""
    rnd = random.Random(5)
    files = {
        "empty": b"",
        "one": b"x",
        "big.bin": os.urandom(3 * 1024 * 1024 + 12345),
        "tree/a.txt": b"hello " * 1000 + MARKER,
        "tree/sub/b.txt": b"".join(b"line %d %s\n" % (i, MARKER) for i in range(20000)),
        "tree/sub/deeper/c.bin": bytes(rnd.getrandbits(8) for _ in range(70001)),
        "tree/%s-name" % MARKER.decode(): b"the name holds the marker",
    }
    for rel, data in files.items():
        c.write(rel, data)
    os.chmod(c.path("tree/a.txt"), 0o640)
    os.utime(c.path("one"), (1500000000, 1500000000.25))
    return {c.path(rel): data for rel, data in files.items()}


def meta_write_ids(c):
    """{meta key: set of write ids (piece header bytes 8..24)} over every meta backend."""
    out = {}
    for b in c.meta:
        with b.client() as cl:
            cursor = None
            while True:
                r = cl.cmd("SCAN") if cursor is None else cl.cmd("SCAN", cursor)
                if isinstance(r, zstortest.zdbtest.RespError):
                    break
                cursor, items = r
                for item in items:
                    key = item[0]
                    val = cl.cmd("GET", key)
                    out.setdefault(key, []).append(val[8:24] if b"/meta/" in key else val)
    return out


class ConcurrentStores(ZstorTestCase):
    def test_two_stores_of_one_name_leave_one_version(self):
        """Two processes store different files under the same name at once, five rounds:
        each ends with one version whose metadata pieces all agree, and the shards of
        the other version deleted (its store says it was undone, or was replaced)."""
        c = self.new_cluster(extra=FAST)
        kp = c.path("kp")
        os.makedirs(kp)
        contents = set()
        for rnd in range(5):
            a = c.write("d1/same.bin", os.urandom(300000 + rnd))
            b = c.write("d2/same.bin", os.urandom(300000 + rnd))
            datas = set()
            for p in (a, b):
                with open(p, "rb") as f:
                    datas.add(f.read())
            results = {}

            def run(path, name):
                results[name] = c.zstor("store", "-f", path, "--key-path", kp)

            ts = [threading.Thread(target=run, args=(a, "a")), threading.Thread(target=run, args=(b, "b"))]
            for t in ts:
                t.start()
            for t in ts:
                t.join(120)
            ok = [r for r in results.values() if r.rc == 0]
            self.assertGreaterEqual(len(ok), 1, [repr(r) for r in results.values()])
            for r in results.values():
                if r.rc != 0:
                    self.assertIn("concurrent store", r.err, repr(r))
            # one version: 6 shards of one chunk, all metadata pieces of one write
            total = sum(c.entries()[("data", d.index)] for d in c.data)
            self.assertEqual(total, 6, "round %d: %d shard values on the backends" % (rnd, total))
            ids = meta_write_ids(c)
            done = [k for k in ids if b"/done/" in k]
            ids = {k: v for k, v in ids.items() if b"/meta/" in k}
            self.assertEqual(len(ids), 1)
            self.assertEqual(len(done), 1, "round %d: done markers %s" % (rnd, done))
            for key, wids in ids.items():
                self.assertEqual(len(wids), 4)
                self.assertEqual(len(set(wids)), 1, "round %d: pieces of %d writes" % (rnd, len(set(wids))))
            out = os.path.join(c.tmp, "out%d" % rnd)
            self.assertOk(c.zstor("retrieve", "-f", os.path.join(kp, "same.bin"), "-o", out))
            with open(out, "rb") as f:
                self.assertIn(f.read(), datas)


class StoreRetrieve(ZstorTestCase):
    def store_mix(self, c):
        files = mix(c)
        for rel in ("empty", "one", "big.bin", "tree"):
            self.assertOk(c.zstor("store", "-f", c.path(rel)))
        for p, data in files.items():
            r = c.zstor("check", "-f", p)
            self.assertOk(r)
            self.assertEqual(r.text().strip(), b2(data), p)
        return files

    def retrieve_all(self, c, files):
        for p in files:
            os.unlink(p)
        for rel in ("empty", "one", "big.bin", "tree"):  # tree: a stored directory
            self.assertOk(c.zstor("retrieve", "-f", c.path(rel)))
        for p, data in files.items():
            with open(p, "rb") as f:
                self.assertEqual(f.read(), data, p)
        self.assertEqual(stat.S_IMODE(os.stat(c.path("tree/a.txt")).st_mode), 0o640)
        self.assertEqual(os.stat(c.path("one")).st_mtime_ns, 1500000000250000000)

    def test_mix_survives_two_data_and_two_meta_lost(self):
        for dead_data, dead_meta in (((0, 1), (0, 1)), ((2, 5), (1, 3))):
            with self.subTest(data=dead_data, meta=dead_meta):
                c = self.new_cluster(extra=FAST)
                files = self.store_mix(c)
                listed = c.zstor("list")
                self.assertOk(listed)
                self.assertEqual(sorted(listed.text().split()), sorted(files))
                for i in dead_data:
                    c.data[i].kill()
                for i in dead_meta:
                    c.meta[i].kill()
                self.retrieve_all(c, files)
                # list too, and its warning counts the meta backends it could not list
                listed = c.zstor("list")
                self.assertOk(listed)
                self.assertEqual(sorted(listed.text().split()), sorted(files))
                self.assertIn("2 of 4 meta backends could not be listed", listed.err)
                # check still answers from the two meta backends left
                r = c.zstor("check", "-f", c.path("big.bin"))
                self.assertEqual(r.text().strip(), b2(files[c.path("big.bin")]))

    def test_defaults_wait_for_retries(self):
        """Default timeouts and retries: a quick probe notices a dead backend, requests
        never wait for its retries."""
        c = self.new_cluster()
        files = self.store_mix(c)
        c.data[4].kill()
        c.meta[2].kill()
        t = time.monotonic()
        self.retrieve_all(c, files)
        print("retrieve of 4 paths with defaults and 2 backends dead: %.1fs" % (time.monotonic() - t))

    def test_nothing_readable_on_backends(self):
        c = self.new_cluster(extra=FAST)
        self.store_mix(c)
        self.assertOk(c.zstor("store", "-f", c.path("tree")))
        self.assertTrue(c.backend_files())
        for path in c.backend_files():
            with open(path, "rb") as f:
                blob = f.read()
            self.assertNotIn(MARKER, blob, path)
            self.assertNotIn(b"hello hello", blob, path)
            self.assertNotIn(b"tree/sub", blob, path)

    def test_identical_content_not_uploaded_again(self):
        c = self.new_cluster(extra=FAST)
        p = c.write("same.bin", os.urandom(200000))
        self.assertOk(c.zstor("store", "-f", p))
        before = c.entries()
        os.utime(p, (1600000000, 1600000000))  # only the content counts
        r = c.zstor("-d", "store", "-f", p)
        self.assertOk(r)
        self.assertIn("already stored with the same content", r.err)
        self.assertEqual(c.entries(), before)
        # new content: uploaded, the replaced version's shards deleted
        data = os.urandom(200000)
        with open(p, "wb") as f:
            f.write(data)
        self.assertOk(c.zstor("store", "-f", p))
        self.assertEqual(c.entries(), before)
        os.unlink(p)
        self.assertOk(c.zstor("retrieve", "-f", p))
        with open(p, "rb") as f:
            self.assertEqual(f.read(), data)

    def test_store_delete_flag_and_key_path(self):
        c = self.new_cluster(extra=FAST)
        data = os.urandom(100000)
        elsewhere = os.path.join(c.tmp, "incoming")
        os.makedirs(elsewhere)
        src = os.path.join(elsewhere, "upload.bin")
        with open(src, "wb") as f:
            f.write(data)
        os.makedirs(c.path("kp"))
        self.assertOk(c.zstor("store", "-f", src, "-k", c.path("kp"), "--delete"))
        self.assertFalse(os.path.exists(src))
        r = c.zstor("check", "-f", c.path("kp", "upload.bin"))
        self.assertEqual(r.text().strip(), b2(data))
        self.assertOk(c.zstor("retrieve", "-f", c.path("kp", "upload.bin")))
        with open(c.path("kp", "upload.bin"), "rb") as f:
            self.assertEqual(f.read(), data)
        # a directory with --key-path keeps its structure below DIR
        c.write("../incoming/d/x", b"x-data")
        c.write("../incoming/d/s/y", b"y-data")
        self.assertOk(c.zstor("store", "-f", os.path.join(elsewhere, "d"), "-k", c.path("kp")))
        self.assertEqual(c.zstor("check", "-f", c.path("kp", "s", "y")).text().strip(), b2(b"y-data"))

    def test_retrieve_to_out_and_stdout(self):
        c = self.new_cluster(extra=FAST)
        data = os.urandom(1500000)
        p = c.write("o.bin", data)
        self.assertOk(c.zstor("store", "-f", p))
        out = os.path.join(c.tmp, "elsewhere", "copy.bin")
        self.assertOk(c.zstor("retrieve", "-f", p, "-o", out))
        with open(out, "rb") as f:
            self.assertEqual(f.read(), data)
        r = c.zstor("retrieve", "-f", p, "-o", "-")
        self.assertOk(r)
        self.assertEqual(r.out, data)
        # an existing FIFO (or device: -o /dev/null) is written into, not replaced by a
        # file renamed over it (which is what -o /dev/null used to do to /dev/null)
        fifo = os.path.join(c.tmp, "fifo")
        os.mkfifo(fifo)
        got = []
        reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()), daemon=True)
        reader.start()
        r = c.zstor("retrieve", "-f", p, "-o", fifo)
        reader.join(60)
        self.assertOk(r)
        self.assertEqual(got, [data])
        self.assertTrue(stat.S_ISFIFO(os.lstat(fifo).st_mode))
        # a symbolic link is followed: the file it points to is replaced, the link stays
        target = os.path.join(c.tmp, "target.bin")
        with open(target, "wb") as f:
            f.write(b"old")
        link = os.path.join(c.tmp, "link.bin")
        os.symlink(target, link)
        self.assertOk(c.zstor("retrieve", "-f", p, "-o", link))
        self.assertTrue(os.path.islink(link))
        with open(target, "rb") as f:
            self.assertEqual(f.read(), data)
        # a relative path is taken from the working directory, as store keys it
        r = c.zstor("check", "-f", os.path.relpath(p))
        self.assertEqual(r.text().strip(), b2(data))

    def test_large_file_on_tmpfs(self):
        """100 MiB (20 MiB under a sanitizer) with backends on tmpfs; the time is printed,
        not asserted."""
        tmp = "/dev/shm" if os.path.isdir("/dev/shm") else None
        size = (20 if zstortest.sanitized() else 100) * 1024 * 1024 + 4321
        c = self.new_cluster(extra=FAST, tmp=tmp)
        rnd = random.Random(9)
        block = bytes(rnd.getrandbits(8) for _ in range(1 << 16))
        data = (block * (size // len(block) + 1))[:size]
        p = c.write("large.bin", data)
        t = time.monotonic()
        self.assertOk(c.zstor("store", "-f", p))
        ts = time.monotonic() - t
        c.data[1].kill()
        c.data[4].kill()
        os.unlink(p)
        t = time.monotonic()
        self.assertOk(c.zstor("retrieve", "-f", p))
        tr = time.monotonic() - t
        with open(p, "rb") as f:
            self.assertEqual(b2(f.read()), b2(data))
        print("%d MiB: store %.2fs, retrieve with 2 data backends down %.2fs" % (size >> 20, ts, tr))

    def test_shards_over_the_value_limit_are_split(self):
        # 32 MiB chunks in 4+2: every shard is 8 MiB + 76 bytes, over zdb's 8 MiB limit
        c = self.new_cluster(extra=FAST + "\nchunk_size = 33554432", tmp="/dev/shm" if os.path.isdir("/dev/shm") else None)
        data = os.urandom(40 * 1024 * 1024 + 3)
        p = c.write("split.bin", data)
        self.assertOk(c.zstor("store", "-f", p))
        # 2 chunks: the first shard of each position in 2 values, the second in 1
        self.assertEqual([c.entries()[("data", b.index)] for b in c.data], [3] * 6)
        c.data[0].kill()
        c.data[5].kill()
        os.unlink(p)
        self.assertOk(c.zstor("retrieve", "-f", p))
        with open(p, "rb") as f:
            self.assertEqual(f.read(), data)

    def test_status_json_counts_objects(self):
        c = self.new_cluster(extra=FAST)
        self.assertOk(c.zstor("store", "-f", c.write("s.bin", os.urandom(5000))))
        r = c.zstor("status", "--json")
        self.assertOk(r)
        doc = json.loads(r.text())
        rows = doc["backends"]
        self.assertEqual(len(rows), 10)
        self.assertEqual(sum(1 for b in rows if b["role"] == "data" and b["objects"] == 1), 6)
        self.assertTrue(all(b["reachable"] for b in rows))
        self.assertEqual(sorted({b["group"] for b in rows if b["role"] == "data"}), [0, 1, 2])


if __name__ == "__main__":
    zstortest.main()
