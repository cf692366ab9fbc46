#!/usr/bin/env python3
"""SCAN / SCANX / RSCAN / KEYCUR against the real server: append order both ways, deleted
and overwritten keys skipped, 17-byte cursors (also across restarts and deletions),
forged cursors refused, sequential mode, file rotations, pipelined (still batched)
writes, frozen namespaces and argument errors.

Every walk is bounded; nothing here measures time."""

import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zdbtest  # noqa: E402
from zdbtest import RespError, ZdbTestCase, le64  # noqa: E402

MAX_CALLS = 10000  # bound of every SCAN loop


def walk(client, cmd="SCAN", cursor=None, max_calls=MAX_CALLS):
    """All entries a SCAN/RSCAN loop returns: list of [key, length, timestamp]."""
    out = []
    for _ in range(max_calls):
        reply = client.cmd(cmd) if cursor is None else client.cmd(cmd, cursor)
        if isinstance(reply, RespError):
            assert reply.text == "No more data", reply
            return out
        assert isinstance(reply, list) and len(reply) == 2, reply
        cursor, entries = reply
        assert isinstance(cursor, bytes) and len(cursor) == 17, cursor
        for e in entries:
            assert isinstance(e, list) and len(e) == 3, e
            assert isinstance(e[0], bytes) and isinstance(e[1], int) and isinstance(e[2], int), e
        out.extend(entries)
    raise AssertionError("%s did not end within %d calls" % (cmd, max_calls))


def keys(entries):
    return [e[0] for e in entries]


class ScanTest(ZdbTestCase):
    def setUp(self):
        self.z = self.new_zdb()
        self.c = self.client(self.z)

    def test_empty(self):
        self.assertError(self.c.cmd("SCAN"), "No more data")
        self.assertError(self.c.cmd("RSCAN"), "No more data")
        self.assertError(self.c.cmd("SCANX"), "No more data")
        self.c.cmd("SET", "a", "1")
        self.assertEqual(self.c.cmd("DEL", "a"), "OK")
        self.assertError(self.c.cmd("SCAN"), "No more data")
        self.assertError(self.c.cmd("RSCAN"), "No more data")

    def test_order_deletes_overwrites(self):
        expect = []
        for i in range(40):
            k = b"key-%02d" % i
            self.assertEqual(self.c.cmd("SET", k, b"v" * i), k)
            expect.append(k)
        for i in range(0, 40, 3):
            self.assertEqual(self.c.cmd("DEL", b"key-%02d" % i), "OK")
            expect.remove(b"key-%02d" % i)
        for i in (1, 5, 7):
            k = b"key-%02d" % i
            self.assertEqual(self.c.cmd("SET", k, b"new value"), k)
            expect.remove(k)
            expect.append(k)  # an overwrite moves the key to the end
        got = walk(self.c)
        self.assertEqual(keys(got), expect)
        lengths = {e[0]: e[1] for e in got}
        self.assertEqual(lengths[b"key-02"], 2)
        self.assertEqual(lengths[b"key-05"], len(b"new value"))
        now = self.c.cmd("TIME")
        for e in got:
            self.assertLessEqual(e[2], int(now[0]))
            self.assertGreater(e[2], 1500000000)
        self.assertEqual(keys(walk(self.c, "RSCAN")), expect[::-1])
        self.assertEqual(keys(walk(self.c, "SCANX")), expect)
        # and after a restart, from the files
        self.z.restart()
        c = self.client(self.z)
        self.assertEqual(keys(walk(c)), expect)
        self.assertEqual(keys(walk(c, "RSCAN")), expect[::-1])

    def test_timestamp_and_length(self):
        self.assertEqual(self.c.cmd("SET", "old", "12345", "1000000"), b"old")
        self.assertEqual(self.c.cmd("SET", "empty", ""), b"empty")
        got = walk(self.c)
        self.assertEqual(got, [[b"old", 5, 1000000], [b"empty", 0, got[1][2]]])

    def test_cursor_continues_strictly_after(self):
        for i in range(10):
            self.c.cmd("SET", "k%d" % i, "v")
        cur = self.c.cmd("KEYCUR", "k4")
        self.assertIsInstance(cur, bytes)
        self.assertEqual(len(cur), 17)
        self.assertEqual(keys(walk(self.c, cursor=cur)), [b"k%d" % i for i in range(5, 10)])
        self.assertEqual(keys(walk(self.c, "RSCAN", cursor=cur)), [b"k%d" % i for i in range(3, -1, -1)])
        # the cursor of the last entry: nothing after it
        self.assertError(self.c.cmd("SCAN", self.c.cmd("KEYCUR", "k9")), "No more data")
        self.assertError(self.c.cmd("RSCAN", self.c.cmd("KEYCUR", "k0")), "No more data")
        # cursor layout: keylen, index file id, length, offset, crc (all little-endian)
        keylen, fileid, length, off, crc = struct.unpack("<BIIII", cur)
        self.assertEqual((keylen, fileid, length), (2, 0, 1))
        self.assertEqual(off, 29 + 4 * (34 + 2))

    def test_cursor_survives_delete_and_restart(self):
        for k in ("a", "b", "c", "d"):
            self.c.cmd("SET", k, k)
        cur = self.c.cmd("KEYCUR", "b")
        self.assertEqual(self.c.cmd("DEL", "b"), "OK")
        self.assertEqual(keys(walk(self.c, cursor=cur)), [b"c", b"d"])
        self.z.restart()
        c = self.client(self.z)
        self.assertEqual(keys(walk(c, cursor=cur)), [b"c", b"d"])
        self.assertEqual(keys(walk(c, "RSCAN", cursor=cur)), [b"a"])

    def test_bad_cursors(self):
        for k in ("a", "bb", "ccc"):
            self.c.cmd("SET", k, k)
        cur = self.c.cmd("KEYCUR", "bb")
        bad = [b"", b"x", cur[:16], cur + b"\x00", b"\x00" * 17, b"\xff" * 17]
        for i in range(17):
            b = bytearray(cur)
            b[i] ^= 0xA5
            bad.append(bytes(b))
        keylen, fileid, length, off, crc = struct.unpack("<BIIII", cur)
        for f, o in ((1, off), (0xFFFFFFFF, off), (0, 0), (0, 28), (0, off + 1), (0, 1 << 31), (0, 0xFFFFFFFF)):
            bad.append(struct.pack("<BIIII", keylen, f, length, o, crc))
        for b in bad:
            for cmd in ("SCAN", "RSCAN", "SCANX"):
                self.assertError(self.c.cmd(cmd, b), "Invalid key format")
        self.assertEqual(self.c.cmd("PING"), "PONG")
        self.assertEqual(keys(walk(self.c, cursor=cur)), [b"ccc"])

    def test_arguments(self):
        self.c.cmd("SET", "a", "1")
        cur = self.c.cmd("KEYCUR", "a")
        self.assertError(self.c.cmd("SCAN", cur, "x"), "Unexpected arguments")
        self.assertError(self.c.cmd("RSCAN", cur, cur), "Unexpected arguments")
        self.assertError(self.c.cmd("KEYCUR"), "Unexpected arguments")
        self.assertError(self.c.cmd("KEYCUR", "a", "b"), "Unexpected arguments")
        self.assertError(self.c.cmd("KEYCUR", ""), "Invalid argument")
        self.assertError(self.c.cmd("KEYCUR", "k" * 256), "Invalid key")
        self.assertError(self.c.cmd("KEYCUR", "missing"), "Key not found")
        self.assertEqual(self.c.cmd("DEL", "a"), "OK")
        self.assertError(self.c.cmd("KEYCUR", "a"), "Key not found")

    def test_rotations(self):
        expect = []
        for f in range(4):
            for i in range(3):
                k = b"f%d-%d" % (f, i)
                self.c.cmd("SET", k, b"x" * 10)
                expect.append(k)
            self.assertEqual(self.c.cmd("NSJUMP"), "OK")
        self.assertEqual(self.c.cmd("NSJUMP"), "OK")  # an empty file in between
        self.c.cmd("SET", "last", "y")
        expect.append(b"last")
        self.c.cmd("SET", "f0-1", "moved")  # from i0 to the active file
        expect.remove(b"f0-1")
        expect.append(b"f0-1")
        self.assertEqual(keys(walk(self.c)), expect)
        self.assertEqual(keys(walk(self.c, "RSCAN")), expect[::-1])
        # the cursor of an entry in an older file continues into the next ones
        cur = self.c.cmd("KEYCUR", "f1-2")
        self.assertEqual(struct.unpack("<BIIII", cur)[1], 1)
        self.assertEqual(keys(walk(self.c, cursor=cur)), expect[expect.index(b"f1-2") + 1:])

    def test_pipelined_writes_are_seen(self):
        # the writes of this pipeline are still in the server's batch when SCAN runs
        replies = self.c.pipeline([("SET", "p1", "a"), ("SET", "p2", "b"), ("DEL", "p1"), ("SET", "p3", "c"),
                                   ("SCAN",), ("RSCAN",)])
        self.assertEqual(replies[:4], [b"p1", b"p2", "OK", b"p3"])
        self.assertEqual(keys(replies[4][1]), [b"p2", b"p3"])
        self.assertEqual(keys(replies[5][1]), [b"p3", b"p2"])

    def test_many_entries(self):
        n = 3000
        cmds = [("SET", b"many-%05d" % i, b"%d" % i) for i in range(n)]
        for i in range(0, n, 500):
            self.c.pipeline(cmds[i:i + 500])
        for i in range(0, n, 7):
            self.c.cmd("DEL", b"many-%05d" % i)
        expect = [b"many-%05d" % i for i in range(n) if i % 7]
        self.assertEqual(keys(walk(self.c)), expect)
        self.assertEqual(keys(walk(self.c, "RSCAN")), expect[::-1])

    def test_other_namespace_and_frozen(self):
        self.c.cmd("SET", "in-default", "1")
        self.assertEqual(self.c.cmd("NSNEW", "other"), "OK")
        self.assertEqual(self.c.cmd("SELECT", "other"), "OK")
        self.assertError(self.c.cmd("SCAN"), "No more data")
        self.c.cmd("SET", "in-other", "2")
        self.assertEqual(keys(walk(self.c)), [b"in-other"])
        # a cursor of another namespace means nothing here
        self.assertEqual(self.c.cmd("SELECT", "default"), "OK")
        cur = self.c.cmd("KEYCUR", "in-default")
        self.assertEqual(self.c.cmd("SELECT", "other"), "OK")
        self.assertError(self.c.cmd("SCAN", cur), "Invalid key format")
        self.assertEqual(self.c.cmd("NSSET", "other", "freeze", "1"), "OK")
        frozen = "Namespace is temporarily frozen (read-write disabled)"
        self.assertError(self.c.cmd("SCAN"), frozen)
        self.assertError(self.c.cmd("RSCAN"), frozen)
        self.assertError(self.c.cmd("KEYCUR", "in-other"), frozen)
        self.assertEqual(self.c.cmd("NSSET", "other", "freeze", "0"), "OK")
        self.assertEqual(keys(walk(self.c)), [b"in-other"])


class ScanSeqTest(ZdbTestCase):
    def test_seq_mode(self):
        z = self.new_zdb("--mode", "seq")
        c = self.client(z)
        ids = [c.cmd("SET", "", b"value %d" % i) for i in range(6)]
        self.assertEqual(ids, [le64(i) for i in range(6)])
        self.assertEqual(c.cmd("NSJUMP"), "OK")
        ids.append(c.cmd("SET", "", b"value 6"))
        self.assertEqual(c.cmd("SET", le64(2), b"updated"), le64(2))  # same slot, new data
        self.assertEqual(c.cmd("DEL", le64(4)), "OK")
        live = [le64(i) for i in (0, 1, 2, 3, 5, 6)]
        got = walk(c)
        self.assertEqual(keys(got), live)
        self.assertEqual(dict((e[0], e[1]) for e in got)[le64(2)], len(b"updated"))
        self.assertEqual(keys(walk(c, "RSCAN")), live[::-1])
        cur = c.cmd("KEYCUR", le64(3))
        self.assertEqual(len(cur), 17)
        self.assertEqual(keys(walk(c, cursor=cur)), live[4:])
        self.assertError(c.cmd("KEYCUR", le64(4)), "Key not found")
        self.assertError(c.cmd("KEYCUR", le64(99)), "Key not found")
        self.assertError(c.cmd("KEYCUR", "short"), "Key not found")
        z.restart()
        c = self.client(z)
        self.assertEqual(keys(walk(c)), live)


class ScanRotationBySizeTest(ZdbTestCase):
    def test_datasize_rotation(self):
        z = self.new_zdb("--datasize", "512K")
        c = self.client(z)
        expect = []
        for i in range(24):
            k = b"big-%02d" % i
            self.assertEqual(c.cmd("SET", k, bytes([65 + i]) * 100000), k)
            expect.append(k)
        self.assertTrue(os.path.exists(z.data_file(3)))
        self.assertEqual(keys(walk(c)), expect)
        self.assertEqual(keys(walk(c, "RSCAN")), expect[::-1])
        self.assertTrue(all(e[1] == 100000 for e in walk(c)))


if __name__ == "__main__":
    zdbtest.main()
