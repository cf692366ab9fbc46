#!/usr/bin/env python3
"""HISTORY k [ekey]: walking back through the versions of a key (user and sequential
mode, across rotations and restarts), the 8-byte ekey, and every error: missing and
deleted keys, the end of the chain, ekeys of another key, forged and short ekeys."""

import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zdbtest  # noqa: E402
from zdbtest import RespError, ZdbTestCase, le64  # noqa: E402

MAX_VERSIONS = 1000  # bound of every walk


def versions(client, key):
    """[(timestamp, payload)] newest first, following the ekeys to the end."""
    out = []
    reply = client.cmd("HISTORY", key)
    for _ in range(MAX_VERSIONS):
        assert isinstance(reply, list) and len(reply) == 3, reply
        ekey, ts, payload = reply
        assert isinstance(ts, bytes) and ts.isdigit(), ts
        out.append((int(ts), payload))
        if ekey is None:
            return out
        assert isinstance(ekey, bytes) and len(ekey) == 8, ekey
        reply = client.cmd("HISTORY", key, ekey)
    raise AssertionError("history of %r longer than %d" % (key, MAX_VERSIONS))


class HistoryTest(ZdbTestCase):
    def setUp(self):
        self.z = self.new_zdb()
        self.c = self.client(self.z)

    def test_versions_with_timestamps(self):
        # the admin timestamp form makes every version's time known
        for i, ts in enumerate((1000, 2000, 3000, 4000)):
            self.assertEqual(self.c.cmd("SET", "k", b"version %d" % i, str(ts)), b"k")
        self.assertEqual(versions(self.c, "k"),
                         [(4000, b"version 3"), (3000, b"version 2"), (2000, b"version 1"), (1000, b"version 0")])
        first = self.c.cmd("HISTORY", "k")
        self.assertEqual(first[1:], [b"4000", b"version 3"])
        # the ekey is the index file id and offset of the previous version
        fileid, off = struct.unpack("<II", first[0])
        self.assertEqual(fileid, 0)
        self.assertEqual(off, 29 + 2 * (34 + 1))

    def test_single_version(self):
        self.c.cmd("SET", "one", "only")
        reply = self.c.cmd("HISTORY", "one")
        self.assertIsNone(reply[0])
        self.assertEqual(reply[2], b"only")
        self.assertError(self.c.cmd("HISTORY", "one", b"\x00" * 8), "No more history")

    def test_unchanged_value_adds_no_version(self):
        self.c.cmd("SET", "same", "v")
        self.assertIsNone(self.c.cmd("SET", "same", "v"))
        self.assertEqual([p for _, p in versions(self.c, "same")], [b"v"])

    def test_errors(self):
        self.assertError(self.c.cmd("HISTORY"), "Invalid arguments")
        self.assertError(self.c.cmd("HISTORY", "a", "b", "c"), "Invalid arguments")
        self.assertError(self.c.cmd("HISTORY", "missing"), "Key not found")
        self.assertError(self.c.cmd("HISTORY", ""), "Key not found")
        self.assertError(self.c.cmd("HISTORY", "x" * 256), "Invalid key")
        self.c.cmd("SET", "a", "1")
        self.c.cmd("SET", "a", "2")
        self.c.cmd("SET", "b", "3")
        self.c.cmd("SET", "b", "4")
        ekey_a = self.c.cmd("HISTORY", "a")[0]
        ekey_b = self.c.cmd("HISTORY", "b")[0]
        self.assertError(self.c.cmd("HISTORY", "a", ekey_a[:7]), "Invalid arguments")
        self.assertError(self.c.cmd("HISTORY", "a", ekey_a + b"\x00"), "Invalid arguments")
        self.assertError(self.c.cmd("HISTORY", "a", ekey_b), "Invalid arguments (invalid key)")
        self.assertError(self.c.cmd("HISTORY", "b", ekey_a), "Invalid arguments (invalid key)")
        for fileid, off in ((7, 29), (0xFFFFFFFF, 29), (0, 1 << 30), (0, 0xFFFFFFFF), (0, 10000)):
            self.assertError(self.c.cmd("HISTORY", "a", struct.pack("<II", fileid, off)),
                             "Invalid arguments (index query)")
        # every offset: the two entries of "a" (at 29 and 64) give its versions, all other
        # offsets an error; never a crash, never another key's payload
        for off in range(1, 29 + 4 * 35 + 40):
            r = self.c.cmd("HISTORY", "a", struct.pack("<II", 0, off))
            if off in (29, 64):
                self.assertEqual(r[2], b"1" if off == 29 else b"2")
            else:
                self.assertIsInstance(r, RespError)
        self.assertEqual(self.c.cmd("DEL", "a"), "OK")
        self.assertError(self.c.cmd("HISTORY", "a"), "Key not found")
        # an old version can still be read by its ekey after a delete
        self.assertEqual(self.c.cmd("HISTORY", "a", ekey_a)[2], b"1")
        self.assertEqual(self.c.cmd("NSSET", "default", "freeze", "1"), "OK")
        self.assertError(self.c.cmd("HISTORY", "b"), "Namespace is temporarily frozen (read-write disabled)")
        self.assertEqual(self.c.cmd("NSSET", "default", "freeze", "0"), "OK")

    def test_across_rotations_and_restart(self):
        expect = []
        for i in range(5):
            v = b"gen-%d-" % i + b"z" * (i * 1000)
            self.c.cmd("SET", "rot", v)
            expect.insert(0, v)
            self.c.cmd("SET", "filler-%d" % i, "f")
            self.assertEqual(self.c.cmd("NSJUMP"), "OK")
        self.assertEqual([p for _, p in versions(self.c, "rot")], expect)
        ekeys = []
        r = self.c.cmd("HISTORY", "rot")
        while r[0] is not None and len(ekeys) < 10:
            ekeys.append(struct.unpack("<II", r[0]))
            r = self.c.cmd("HISTORY", "rot", r[0])
        self.assertEqual([f for f, _ in ekeys], [3, 2, 1, 0])
        self.z.restart()
        c = self.client(self.z)
        self.assertEqual([p for _, p in versions(c, "rot")], expect)

    def test_large_payload(self):
        big1 = os.urandom(1 << 20)
        big2 = os.urandom(3 << 20)
        self.c.cmd("SET", "big", big1)
        self.c.cmd("SET", "big", big2)
        self.assertEqual([p for _, p in versions(self.c, "big")], [big2, big1])

    def test_pipelined(self):
        replies = self.c.pipeline([("SET", "p", "1"), ("SET", "p", "2"), ("HISTORY", "p")])
        self.assertEqual(replies[2][2], b"2")
        self.assertEqual(self.c.cmd("HISTORY", "p", replies[2][0])[2], b"1")


class HistorySeqTest(ZdbTestCase):
    def test_seq_versions(self):
        z = self.new_zdb("--mode", "seq")
        c = self.client(z)
        self.assertEqual(c.cmd("SET", "", "s0", "100"), le64(0))
        self.assertEqual(c.cmd("SET", "", "other", "150"), le64(1))
        self.assertEqual(c.cmd("SET", le64(0), "s1", "200"), le64(0))
        self.assertEqual(c.cmd("NSJUMP"), "OK")
        self.assertEqual(c.cmd("SET", le64(0), "s2", "300"), le64(0))
        self.assertEqual(versions(c, le64(0)), [(300, b"s2"), (200, b"s1"), (100, b"s0")])
        self.assertEqual(versions(c, le64(1)), [(150, b"other")])
        ekey = c.cmd("HISTORY", le64(0))[0]
        self.assertError(c.cmd("HISTORY", le64(1), ekey), "Invalid arguments (invalid key)")
        self.assertError(c.cmd("HISTORY", le64(9)), "Key not found")
        z.restart()
        c = self.client(z)
        self.assertEqual(versions(c, le64(0)), [(300, b"s2"), (200, b"s1"), (100, b"s0")])


if __name__ == "__main__":
    zdbtest.main()
