"""zstor's other commands (list, delete, test, status -f, scrub) and dir:// share
directories end to end, with no server at all."""

import json
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zstortest  # noqa: E402
from zstortest import ZstorTestCase, b2  # noqa: E402

FAST = "retries = 1\nretry_backoff_ms = 20\nconnect_timeout_ms = 2000"
MARKER = b"DIR-BACKEND-MARKER-41d2"


class Commands(ZstorTestCase):
    def test_gc_finds_and_removes_unreferenced_shards(self):
        """Values no stored file references (left by a crash, a lost race) are found by a
        dry run, kept while young, removed by --delete; referenced ones never."""
        c = self.new_cluster(extra=FAST)
        p = c.write("kept.bin", os.urandom(200000))
        self.assertOk(c.zstor("store", "-f", p))
        for b in c.data[:3]:  # orphans, as a store killed before its metadata leaves them
            for i in range(4):
                self.assertEqual(len(b.cmd("SET", b"", os.urandom(1000 + i))), 8)
        total = lambda: sum(c.entries()[("data", d.index)] for d in c.data)
        self.assertEqual(total(), 6 + 12)
        def counts(text, what):
            return sum(int(m) for m in re.findall(r"(\d+) " + what, text))

        r = c.zstor("gc")
        self.assertOk(r)
        self.assertEqual(counts(r.text(), "younger than 3600 s kept"), 12, r.text())
        self.assertEqual(counts(r.text(), "unreferenced"), 0)
        self.assertIn("dry run", r.text())
        r = c.zstor("gc", "--min-age", "0")
        self.assertOk(r)
        self.assertEqual(counts(r.text(), "unreferenced"), 12, r.text())
        self.assertEqual(total(), 18)  # a dry run deletes nothing
        r = c.zstor("gc", "--delete", "--min-age", "0")
        self.assertOk(r)
        self.assertEqual(counts(r.text(), "deleted"), 12, r.text())
        self.assertEqual(total(), 6)
        r = c.zstor("retrieve", "-f", p, "-o", "-")
        self.assertOk(r)
        with open(p, "rb") as f:
            self.assertEqual(r.out, f.read())
        r = c.zstor("gc", "--min-age", "0")
        self.assertEqual(counts(r.text(), "unreferenced"), 0, r.text())
        # a record that cannot be read: deleting is refused (it could reference anything)
        bad = c.write_config(path=os.path.join(c.tmp, "badmeta.toml"), meta_key="1" * 64)
        r = c.zstor("gc", "--delete", "--min-age", "0", config=bad)
        self.assertFails(r, "gc", "nothing deleted", "could not be read")
        self.assertEqual(total(), 6)

    def test_list_names_with_control_characters(self):
        """A stored name holding a newline reads as one escaped line; -0 and --json give
        the raw name to scripts."""
        import json
        c = self.new_cluster(extra=FAST)
        odd = "odd\nname\\x\t.bin"
        self.assertOk(c.zstor("store", "-f", c.write(odd, b"x" * 100)))
        self.assertOk(c.zstor("store", "-f", c.write("plain", b"y" * 100)))
        r = c.zstor("list")
        self.assertOk(r)
        lines = r.text().splitlines()
        self.assertEqual(len(lines), 2, lines)
        self.assertIn(c.path("odd\\nname\\\\x\\t.bin"), lines)
        r = c.zstor("list", "-0")
        self.assertOk(r)
        self.assertEqual(sorted(r.out.split(b"\0")[:-1]),
                         sorted([c.path(odd).encode(), c.path("plain").encode()]))
        r = c.zstor("list", "--json")
        self.assertOk(r)
        doc = json.loads(r.out)
        self.assertEqual(sorted(f["path"] for f in doc["files"]), sorted([c.path(odd), c.path("plain")]))
        self.assertTrue(all(f["size"] == 100 and len(f["checksum"]) == 32 for f in doc["files"]))
        r = c.zstor("list", "--json", "nothing-here")
        self.assertEqual(json.loads(r.out), {"files": []})

    def test_list_and_delete(self):
        c = self.new_cluster(extra=FAST)
        names = ["l/a", "l/b/c", "other/d", "l/e"]
        for n in names:
            self.assertOk(c.zstor("store", "-f", c.write(n, n.encode() * 1000)))
        r = c.zstor("list")
        self.assertOk(r)
        self.assertEqual(r.text().split(), sorted(c.path(n) for n in names))
        r = c.zstor("list", c.path("l/b"))
        self.assertEqual(r.text().split(), [c.path("l/b/c")])
        r = c.zstor("list", "l/")  # a prefix of the stored name works too
        self.assertEqual(r.text().split(), sorted(c.path(n) for n in names if n.startswith("l/")))
        r = c.zstor("list", "--long", "other")
        self.assertOk(r)
        size, _, _, checksum, path = r.text().split()
        self.assertEqual((int(size), checksum, path), (7000, b2(b"other/d" * 1000), c.path("other/d")))

        before = sum(c.entries()[("data", b.index)] for b in c.data)
        self.assertEqual(before, 4 * 6)
        self.assertOk(c.zstor("delete", "-f", c.path("l/a")))
        self.assertEqual(sum(c.entries()[("data", b.index)] for b in c.data), 3 * 6)
        self.assertEqual(c.zstor("check", "-f", c.path("l/a")).out, b"")
        self.assertNotIn(c.path("l/a"), c.zstor("list").text().split())
        r = c.zstor("delete", "-f", c.path("l/a"))
        self.assertFails(r, "delete", "l/a", "not stored")
        # deleting with a data backend down: the metadata goes, a warning counts what stays
        c.data[2].kill()
        r = c.zstor("delete", "-f", c.path("l/e"))
        self.assertOk(r)
        self.assertIn("could not be deleted", r.err)
        self.assertEqual(c.zstor("check", "-f", c.path("l/e")).out, b"")

    def test_stored_directory(self):
        # what `store -f DIR` stored, the other commands take as DIR too
        c = self.new_cluster(extra=FAST)
        files = {"t/a": b"A" * 5000, "t/s/b": os.urandom(70000), "t/s/c/d": b"", "u/x": b"x"}
        for n, d in files.items():
            c.write(n, d)
        self.assertOk(c.zstor("store", "-f", c.path("t")))
        self.assertOk(c.zstor("store", "-f", c.path("u")))
        # retrieve -o DIR: the tree below DIR
        out = os.path.join(c.tmp, "out")
        self.assertOk(c.zstor("retrieve", "-f", c.path("t"), "-o", out))
        got = sorted(os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs)
        self.assertEqual(got, ["a", "s/b", "s/c/d"])
        for n in ("t/a", "t/s/b", "t/s/c/d"):
            with open(os.path.join(out, n[2:]), "rb") as f:
                self.assertEqual(f.read(), files[n], n)
        # -o FILE for a directory: refused in one line, FILE untouched
        r = c.zstor("retrieve", "-f", c.path("t"), "-o", c.path("u/x"))
        self.assertFails(r, "retrieve", "stored directory (3 files below it)", "not a directory")
        with open(c.path("u/x"), "rb") as f:
            self.assertEqual(f.read(), b"x")
        # -o -: one stream holds one file
        r = c.zstor("retrieve", "-f", c.path("t"), "-o", "-")
        self.assertFails(r, "retrieve", "stored directory (3 files below it)", "-o -")
        self.assertEqual(r.out, b"")
        # root itself: every stored file, each to its own path
        shutil.rmtree(c.root)
        os.makedirs(c.root)
        self.assertOk(c.zstor("retrieve", "-f", c.root))
        for n, d in files.items():
            with open(c.path(n), "rb") as f:
                self.assertEqual(f.read(), d, n)
        # scrub and rebuild go over every file below the directory
        r = c.zstor("scrub", "-f", c.path("t"))
        self.assertOk(r)
        self.assertEqual(r.text().count("all 6 shards of"), 3, repr(r))
        r = c.zstor("rebuild", "-f", c.path("t", "s"))
        self.assertOk(r)
        self.assertEqual(sorted(l.split(":")[0] for l in r.text().splitlines()),
                         ["rebuilt " + c.path("t/s/b"), "rebuilt " + c.path("t/s/c/d")])
        # delete and status -f take one file and say that this is a directory
        r = c.zstor("delete", "-f", c.path("t"))
        self.assertFails(r, "delete", "stored directory (3 files below it)")
        r = c.zstor("status", "-f", c.path("t"))
        self.assertFails(r, "status -f", "stored directory (3 files below it)")
        r = c.zstor("rebuild", "-f", c.path("none"))
        self.assertFails(r, "rebuild", "not stored")
        # list takes a prefix relative to the working directory as well
        r = c.zstor("list", "root/t/s", cwd=c.tmp)
        self.assertOk(r)
        self.assertEqual(r.text().split(), [c.path("t/s/b"), c.path("t/s/c/d")])

    def test_test_and_status_file(self):
        c = self.new_cluster(extra=FAST)
        r = c.zstor("test")
        self.assertOk(r)
        self.assertEqual(r.text().count("ok    "), 10)
        self.assertIn("placement for 4+2 shards:", r.text())
        placed = r.text().split("shards:")[1].split()
        self.assertEqual(sorted(placed), sorted("%s/%s" % (b.address, b.ns) for b in c.data))
        p = c.write("s", b"status")
        self.assertOk(c.zstor("store", "-f", p))
        r = c.zstor("status", "-f", p)
        self.assertOk(r)
        self.assertIn("4 data + 2 parity", r.text())
        self.assertEqual(r.text().count("reachable"), 6)
        c.data[0].kill()
        r = c.zstor("test")
        self.assertEqual(r.rc, 1)
        self.assertIn(c.data[0].address, r.err)
        self.assertIn("placement", r.err)  # 5 backends left cannot hold 6 shards
        doc = json.loads(c.zstor("status", "-f", p, "--json").text())
        self.assertEqual(sum(1 for s in doc["shards"] if not s["reachable"]), 1)

    def test_config_redundancy_error_names_the_key(self):
        c = self.new_cluster(extra=FAST, groups=(2, 2, 2))
        c.rg, c.rn = 1, 1  # 6 shards over 3 groups of 2 cannot survive a group and a node
        c.write_config()
        r = c.zstor("store", "-f", c.write("x", b"x"))
        self.assertFails(r, "store", "redundant")
        r = c.zstor("test")
        self.assertEqual(r.rc, 1)


class DirBackends(ZstorTestCase):
    def test_end_to_end(self):
        c = self.new_cluster(kind="dir", extra=FAST)
        files = {
            c.write("e", b""): b"",
            c.write("one", b"1"): b"1",
            c.write("big", os.urandom(2500000)): None,
            c.write("t/x.txt", MARKER * 3000): MARKER * 3000,
            c.write("t/s/y.txt", b"y" * 99999 + MARKER): b"y" * 99999 + MARKER,
        }
        with open(c.path("big"), "rb") as f:
            files[c.path("big")] = f.read()
        for rel in ("e", "one", "big", "t"):
            self.assertOk(c.zstor("store", "-f", c.path(rel)))
        # share directories: QSFS-SHARE marker, values under data/, metadata under named/
        for b in c.data:
            self.assertTrue(os.path.exists(os.path.join(b.dir, "QSFS-SHARE")))
        self.assertEqual(sum(b.entries() for b in c.data), (1 + 1 + 3 + 1 + 1) * 6)  # big: 3 chunks
        self.assertEqual([b.entries() for b in c.meta], [10] * 4)  # 5 records, 5 done markers
        for path in c.backend_files():
            with open(path, "rb") as f:
                self.assertNotIn(MARKER, f.read(), path)
        r = c.zstor("status")
        self.assertOk(r)
        c.data[1].kill()
        c.data[2].kill()
        c.meta[0].kill()
        c.meta[3].kill()
        for p in files:
            os.unlink(p)
        for rel in ("e", "one", "big", "t"):
            self.assertOk(c.zstor("retrieve", "-f", c.path(rel)))
        for p, data in files.items():
            with open(p, "rb") as f:
                self.assertEqual(f.read(), data, p)
        # reads never create a share directory where one went away
        self.assertFalse(os.path.exists(c.data[1].dir))
        r = c.zstor("status", "--json")
        rows = json.loads(r.text())["backends"]
        self.assertEqual(sum(1 for b in rows if not b["reachable"]), 4)
        # a store is refused while a meta share directory is missing
        r = c.zstor("store", "-f", c.write("n", b"n"))
        self.assertFails(r, "store", "meta backend not usable", c.meta[0].dir)


if __name__ == "__main__":
    zstortest.main()
