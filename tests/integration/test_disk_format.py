#!/usr/bin/env python3
"""zdb integration tests: the on-disk format of spec section 5, byte for byte.

(a) zdb writes, a pure-Python reader checks every field of its files;
(b) a pure-Python writer lays out a directory the way 0-db v2 does and zdb must serve it.

Facts taken from 0-db v2 (libzdb/index*.c, data.c, namespace.c) where the spec is silent:
- the first index/data entry ever written has previous = 0; previous is NOT reset when
  a new file is started (it points into the previous file);
- v2 writes created = opened = 0 in data file headers;
- a DEL writes a data entry with length 0, flags 1, crc 0, and flips bit 0 of the
  flags byte of the key's live index entry in place (no index entry is appended);
- an overwrite flips the old index entry's deleted flag in place and appends a new
  entry whose parentid/parentoff point to the old one;
- a sequential-mode update appends a copy of the old entry already flagged deleted
  (it takes the next id position) and rewrites the id's own slot in place, keeping its
  previous field and pointing parentid/parentoff at the copy.
"""

import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zdbtest  # noqa: E402
from zdbtest import ZdbTestCase, le64  # noqa: E402

# ---------------------------------------------------------------------------
# CRC-32C, zdb variant: reflected polynomial 0x82F63B78, init 0, no final xor
# ---------------------------------------------------------------------------


def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc32c_zdb(data, crc=0):
    t = _CRC_TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


# ---------------------------------------------------------------------------
# Structures (all little-endian, packed)
# ---------------------------------------------------------------------------

IDX_HEADER = struct.Struct("<4sIQQIB")  # magic, version, created, opened, fileid, mode
IDX_ENTRY = struct.Struct("<BIIIBIIIII")  # keylen offset length previous flags dataid ts crc parentid parentoff
DAT_HEADER = struct.Struct("<4sIQQI")  # magic, version, created, opened, fileid
DAT_ENTRY = struct.Struct("<BIIIBI")  # keylen, length, previous, crc, flags, timestamp
NS_HEADER = struct.Struct("<IBBQB")  # version, namelen, passlen, maxsize, flags

assert IDX_HEADER.size == 29 and IDX_ENTRY.size == 34
assert DAT_HEADER.size == 28 and DAT_ENTRY.size == 18 and NS_HEADER.size == 15

IDX_FLAGS_AT = 13  # byte offset of the flags field inside an index entry
NS_PUBLIC, NS_WORM, NS_EXTENDED = 1, 2, 4


class FormatError(Exception):
    pass


def read_index(path):
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < IDX_HEADER.size:
        raise FormatError("%s: %d bytes, shorter than the header" % (path, len(buf)))
    magic, version, created, opened, fileid, mode = IDX_HEADER.unpack_from(buf, 0)
    header = dict(magic=magic, version=version, created=created, opened=opened, fileid=fileid, mode=mode)
    entries = []
    pos = IDX_HEADER.size
    while pos < len(buf):
        if pos + IDX_ENTRY.size > len(buf):
            raise FormatError("%s: truncated entry header at %d" % (path, pos))
        f = IDX_ENTRY.unpack_from(buf, pos)
        keylen = f[0]
        end = pos + IDX_ENTRY.size + keylen
        if end > len(buf):
            raise FormatError("%s: truncated key at %d" % (path, pos))
        entries.append(dict(pos=pos, keylen=keylen, offset=f[1], length=f[2], previous=f[3], flags=f[4],
                            dataid=f[5], timestamp=f[6], crc=f[7], parentid=f[8], parentoff=f[9],
                            key=buf[pos + IDX_ENTRY.size:end]))
        pos = end
    return header, entries


def read_data(path):
    with open(path, "rb") as f:
        buf = f.read()
    if len(buf) < DAT_HEADER.size:
        raise FormatError("%s: %d bytes, shorter than the header" % (path, len(buf)))
    magic, version, created, opened, fileid = DAT_HEADER.unpack_from(buf, 0)
    header = dict(magic=magic, version=version, created=created, opened=opened, fileid=fileid)
    entries = []
    pos = DAT_HEADER.size
    while pos < len(buf):
        if pos + DAT_ENTRY.size > len(buf):
            raise FormatError("%s: truncated entry header at %d" % (path, pos))
        keylen, length, previous, crc, flags, ts = DAT_ENTRY.unpack_from(buf, pos)
        kstart = pos + DAT_ENTRY.size
        end = kstart + keylen + length
        if end > len(buf):
            raise FormatError("%s: truncated entry at %d" % (path, pos))
        entries.append(dict(pos=pos, keylen=keylen, length=length, previous=previous, crc=crc, flags=flags,
                            timestamp=ts, key=buf[kstart:kstart + keylen], payload=buf[kstart + keylen:end]))
        pos = end
    return header, entries


def read_namespace(path):
    with open(path, "rb") as f:
        buf = f.read()
    version, namelen, passlen, maxsize, flags = NS_HEADER.unpack_from(buf, 0)
    p = NS_HEADER.size
    name = buf[p:p + namelen]
    password = buf[p + namelen:p + namelen + passlen]
    return dict(version=version, namelen=namelen, passlen=passlen, maxsize=maxsize, flags=flags,
                name=name, password=password, size=len(buf))


# ---------------------------------------------------------------------------
# Writer: a namespace laid out as 0-db v2 would write it
# ---------------------------------------------------------------------------


class NsWriter:
    def __init__(self, index_root, data_root, name, mode=0, password=b"", maxsize=0,
                 public=True, worm=False, created=None):
        self.idir = os.path.join(index_root, name)
        self.ddir = os.path.join(data_root, name)
        os.makedirs(self.idir, exist_ok=True)
        os.makedirs(self.ddir, exist_ok=True)
        self.name = name.encode()
        self.mode = mode
        self.created = created if created is not None else int(time.time()) - 1000
        self.fileid = 0
        self.prev_idx = 0
        self.prev_dat = 0
        self.idx = {}  # fileid -> bytearray
        self.dat = {}
        self.live = {}  # key -> (fileid, index position)
        self.next_seq = 0
        self._new_files()
        flags = NS_EXTENDED | (NS_PUBLIC if public else 0) | (NS_WORM if worm else 0)
        ns = NS_HEADER.pack(1, len(self.name), len(password), maxsize, flags) + self.name + password
        with open(os.path.join(self.idir, "zdb-namespace"), "wb") as f:
            f.write(ns)

    def _new_files(self):
        self.idx[self.fileid] = bytearray(IDX_HEADER.pack(b"IDX0", 4, self.created, self.created,
                                                          self.fileid, self.mode))
        self.dat[self.fileid] = bytearray(DAT_HEADER.pack(b"DAT0", 3, 0, 0, self.fileid))

    def jump(self):
        self.fileid += 1
        self._new_files()

    def _append_data(self, key, payload, flags, ts, crc):
        d = self.dat[self.fileid]
        off = len(d)
        d += DAT_ENTRY.pack(len(key), len(payload), self.prev_dat, crc, flags, ts) + key + payload
        self.prev_dat = off
        return off

    def _index_entry(self, key, doff, length, previous, flags, ts, crc, parent):
        return IDX_ENTRY.pack(len(key), doff, length, previous, flags, self.fileid, ts, crc,
                              parent[0], parent[1]) + key

    def _append_index(self, key, doff, length, flags, ts, crc, parent=(0, 0)):
        i = self.idx[self.fileid]
        pos = len(i)
        i += self._index_entry(key, doff, length, self.prev_idx, flags, ts, crc, parent)
        self.prev_idx = pos
        return pos

    def _flag_deleted(self, where):
        fid, pos = where
        self.idx[fid][pos + IDX_FLAGS_AT] |= 1

    def set(self, key, value, ts):
        """User mode SET (new key or overwrite)."""
        parent = (0, 0)
        if key in self.live:
            old = self.live[key]
            self._flag_deleted(old)
            parent = old
        crc = crc32c_zdb(value)
        doff = self._append_data(key, value, 0, ts, crc)
        pos = self._append_index(key, doff, len(value), 0, ts, crc, parent)
        self.live[key] = (self.fileid, pos)

    def delete(self, key, ts):
        self._append_data(key, b"", 1, ts, 0)
        self._flag_deleted(self.live.pop(key))

    def seq_add(self, value, ts):
        sid = self.next_seq
        key = le64(sid)
        crc = crc32c_zdb(value)
        doff = self._append_data(key, value, 0, ts, crc)
        pos = self._append_index(key, doff, len(value), 0, ts, crc)
        assert pos == IDX_HEADER.size + (IDX_ENTRY.size + 8) * sid, "seq writer supports one file"
        self.live[key] = (self.fileid, pos)
        self.next_seq += 1
        return sid

    def seq_update(self, sid, value, ts):
        """0-db's sequential update: deleted copy appended, slot rewritten in place."""
        key = le64(sid)
        fid, slot = self.live[key]
        buf = self.idx[fid]
        old = bytearray(buf[slot:slot + IDX_ENTRY.size + 8])
        old[IDX_FLAGS_AT] |= 1
        # the copy is a new entry: its previous is the last appended entry
        struct.pack_into("<I", old, 9, self.prev_idx)
        cpos = len(self.idx[self.fileid])
        self.idx[self.fileid] += old
        self.prev_idx = cpos
        self.next_seq += 1
        crc = crc32c_zdb(value)
        doff = self._append_data(key, value, 0, ts, crc)
        original_previous = struct.unpack_from("<I", buf, slot + 9)[0]
        buf[slot:slot + IDX_ENTRY.size + 8] = self._index_entry(key, doff, len(value), original_previous, 0,
                                                                ts, crc, (self.fileid, cpos))

    def seq_delete(self, sid, ts):
        key = le64(sid)
        self._append_data(key, b"", 1, ts, 0)
        self._flag_deleted(self.live.pop(key))

    def flush(self):
        for fid, b in self.idx.items():
            with open(os.path.join(self.idir, "i%d" % fid), "wb") as f:
                f.write(b)
        for fid, b in self.dat.items():
            with open(os.path.join(self.ddir, "d%d" % fid), "wb") as f:
                f.write(b)


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


class TestCrc(ZdbTestCase):
    def test_check_values(self):
        self.assertEqual(crc32c_zdb(b"123456789"), 0x58E3FA20)
        self.assertEqual(crc32c_zdb(b"hello"), 0xDF03CD79)
        self.assertEqual(crc32c_zdb(b""), 0)
        # incremental use gives the same result
        self.assertEqual(crc32c_zdb(b"6789", crc32c_zdb(b"12345")), 0x58E3FA20)


class TestZdbWrites(ZdbTestCase):
    def check_chains(self, idx_entries, dat_entries):
        for prev, cur in zip([None] + idx_entries[:-1], idx_entries):
            self.assertEqual(cur["previous"], 0 if prev is None else prev["pos"], "index previous at %d" % cur["pos"])
        for prev, cur in zip([None] + dat_entries[:-1], dat_entries):
            self.assertEqual(cur["previous"], 0 if prev is None else prev["pos"], "data previous at %d" % cur["pos"])

    def test_user_mode_files(self):
        z = self.new_zdb()
        c = z.client()
        t0 = int(time.time())
        self.assertEqual(c.cmd("SET", "a", "hello"), b"a")
        self.assertEqual(c.cmd("SET", "b", "world"), b"b")
        self.assertEqual(c.cmd("SET", "a", "hello, again"), b"a")
        self.assertEqual(c.cmd("DEL", "b"), "OK")
        self.assertEqual(c.cmd("SET", "c", ""), b"c")
        self.assertEqual(c.cmd("SET", b"bin\x00\xff", "stamped", "1600000000"), b"bin\x00\xff")
        t1 = int(time.time())
        c.close()
        z.stop()

        dh, dents = read_data(z.data_file(0))
        self.assertEqual(dh["magic"], b"DAT0")
        self.assertEqual(dh["version"], 3)
        self.assertEqual(dh["fileid"], 0)
        expected = [(b"a", b"hello", 0), (b"b", b"world", 0), (b"a", b"hello, again", 0),
                    (b"b", b"", 1), (b"c", b"", 0), (b"bin\x00\xff", b"stamped", 0)]
        self.assertEqual([(e["key"], e["payload"], e["flags"]) for e in dents], expected)
        self.assertEqual(dents[0]["pos"], DAT_HEADER.size)
        for e in dents:
            self.assertEqual(e["keylen"], len(e["key"]))
            self.assertEqual(e["length"], len(e["payload"]))
            self.assertEqual(e["crc"], crc32c_zdb(e["payload"]), "crc of %r" % e["key"])
        for e in dents[:-1]:
            self.assertTrue(t0 - 1 <= e["timestamp"] <= t1 + 1, e)
        self.assertEqual(dents[-1]["timestamp"], 1600000000)
        self.assertEqual(os.path.getsize(z.data_file(0)), dents[-1]["pos"] + 18 + 5 + 7)

        ih, ients = read_index(z.index_file(0))
        self.assertEqual(ih["magic"], b"IDX0")
        self.assertEqual(ih["version"], 4)
        self.assertEqual(ih["fileid"], 0)
        self.assertEqual(ih["mode"], 0)
        for field in ("created", "opened"):
            self.assertTrue(ih[field] == 0 or 1000000000 < ih[field] <= t1 + 5, "index %s = %d" % (field, ih[field]))
        # one index entry per SET; the DEL flips a flag in place
        self.assertEqual([(e["key"], e["flags"] & 1) for e in ients],
                         [(b"a", 1), (b"b", 1), (b"a", 0), (b"c", 0), (b"bin\x00\xff", 0)])
        self.assertEqual(ients[0]["pos"], IDX_HEADER.size)
        by_data = [dents[0], dents[1], dents[2], dents[4], dents[5]]
        for ie, de in zip(ients, by_data):
            self.assertEqual(ie["keylen"], len(ie["key"]))
            self.assertEqual(ie["offset"], de["pos"], "data offset of %r" % ie["key"])
            self.assertEqual(ie["length"], de["length"])
            self.assertEqual(ie["crc"], de["crc"])
            self.assertEqual(ie["timestamp"], de["timestamp"])
            self.assertEqual(ie["dataid"], 0)
            self.assertEqual(ie["flags"] & ~1, 0)
        self.assertEqual((ients[2]["parentid"], ients[2]["parentoff"]), (0, ients[0]["pos"]))
        for i in (0, 1, 3, 4):
            self.assertEqual((ients[i]["parentid"], ients[i]["parentoff"]), (0, 0))
        self.check_chains(ients, [dents[0], dents[1], dents[2], dents[3], dents[4], dents[5]])

        ns = read_namespace(os.path.join(z.ns_index_dir("default"), "zdb-namespace"))
        self.assertEqual(ns, dict(version=1, namelen=7, passlen=0, maxsize=0, flags=NS_PUBLIC | NS_EXTENDED,
                                  name=b"default", password=b"", size=15 + 7))

    def test_namespace_file_fields(self):
        z = self.new_zdb()
        c = self.client(z)
        c.cmd("NSNEW", "n2")
        path = os.path.join(z.ns_index_dir("n2"), "zdb-namespace")
        ns = read_namespace(path)
        self.assertEqual(ns, dict(version=1, namelen=2, passlen=0, maxsize=0, flags=NS_PUBLIC | NS_EXTENDED,
                                  name=b"n2", password=b"", size=17))
        c.cmd("NSSET", "n2", "password", "pw")
        c.cmd("NSSET", "n2", "maxsize", "12345")
        c.cmd("NSSET", "n2", "public", "0")
        c.cmd("NSSET", "n2", "worm", "1")
        ns = read_namespace(path)
        self.assertEqual(ns, dict(version=1, namelen=2, passlen=2, maxsize=12345, flags=NS_WORM | NS_EXTENDED,
                                  name=b"n2", password=b"pw", size=19))
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        c.cmd("NSSET", "n2", "password", "*")
        c.cmd("NSSET", "n2", "public", "1")
        c.cmd("NSSET", "n2", "worm", "0")
        ns = read_namespace(path)
        self.assertEqual(ns, dict(version=1, namelen=2, passlen=0, maxsize=12345, flags=NS_PUBLIC | NS_EXTENDED,
                                  name=b"n2", password=b"", size=17))

    def test_seq_mode_files(self):
        z = self.new_zdb()
        c = z.client()
        c.cmd("NSNEW", "sq")
        self.assertEqual(c.cmd("NSSET", "sq", "mode", "seq"), "OK")
        c.cmd("SELECT", "sq")
        values = [b"zero", b"one, longer", b""]
        for i, v in enumerate(values):
            self.assertEqual(c.cmd("SET", "", v), le64(i))
        self.assertEqual(c.cmd("DEL", le64(1)), "OK")
        c.close()
        z.stop()
        ih, ients = read_index(z.index_file(0, "sq"))
        self.assertEqual((ih["magic"], ih["version"], ih["fileid"], ih["mode"]), (b"IDX0", 4, 0, 1))
        self.assertEqual(len(ients), 3)
        for s, e in enumerate(ients):
            self.assertEqual(e["pos"], IDX_HEADER.size + 42 * s)
            self.assertEqual(e["keylen"], 8)
            self.assertEqual(e["key"], le64(s))
            self.assertEqual(e["length"], len(values[s]))
            self.assertEqual(e["crc"], crc32c_zdb(values[s]))
        self.assertEqual([e["flags"] & 1 for e in ients], [0, 1, 0])
        self.assertEqual(os.path.getsize(z.index_file(0, "sq")), IDX_HEADER.size + 3 * 42)
        dh, dents = read_data(z.data_file(0, "sq"))
        self.assertEqual((dh["magic"], dh["version"], dh["fileid"]), (b"DAT0", 3, 0))
        self.assertEqual([(e["key"], e["payload"], e["flags"]) for e in dents],
                         [(le64(0), b"zero", 0), (le64(1), b"one, longer", 0), (le64(2), b"", 0), (le64(1), b"", 1)])
        for ie, de in zip(ients, dents):
            self.assertEqual(ie["offset"], de["pos"])
        self.check_chains(ients, dents)

    def test_rotated_files(self):
        z = self.new_zdb("--datasize", str(512 * 1024))
        c = z.client()
        for i in range(40):
            c.cmd("SET", "rot%02d" % i, bytes([i]) * (32 * 1024))
        c.close()
        z.stop()
        n = 0
        all_idx, all_dat = [], []
        while os.path.exists(z.index_file(n)):
            ih, ients = read_index(z.index_file(n))
            dh, dents = read_data(z.data_file(n))
            self.assertEqual(ih["fileid"], n)
            self.assertEqual(dh["fileid"], n)
            self.assertEqual(ih["mode"], 0)
            self.assertLessEqual(os.path.getsize(z.data_file(n)), 512 * 1024)
            by_pos = {d["pos"]: d for d in dents}
            for ie in ients:
                self.assertEqual(ie["dataid"], n)
                de = by_pos.get(ie["offset"])
                self.assertIsNotNone(de, "index entry %r points nowhere in d%d" % (ie["key"], n))
                self.assertEqual((de["key"], de["length"], de["crc"]), (ie["key"], ie["length"], ie["crc"]))
            all_idx += ients
            all_dat += dents
            n += 1
        self.assertGreaterEqual(n, 3)
        self.assertFalse(os.path.exists(z.data_file(n)))
        self.assertEqual([e["key"] for e in all_idx], [b"rot%02d" % i for i in range(40)])
        # previous links run across file boundaries
        self.check_chains(all_idx, all_dat)

    def test_overwrite_and_delete_across_files(self):
        z = self.new_zdb("--datasize", str(512 * 1024))
        c = z.client()
        c.cmd("SET", "old-a", "a0")
        c.cmd("SET", "old-b", "b0")
        for i in range(20):
            c.cmd("SET", "fill%02d" % i, bytes([i]) * (50 * 1024))
        self.assertTrue(os.path.exists(z.index_file(1)))
        self.assertEqual(c.cmd("SET", "old-a", "a1"), b"old-a")
        self.assertEqual(c.cmd("SET", "old-a", "a2"), b"old-a")
        self.assertEqual(c.cmd("DEL", "old-b"), "OK")
        c.close()
        z.stop()
        last = max(n for n in range(10) if os.path.exists(z.index_file(n)))
        _, i0 = read_index(z.index_file(0))
        _, il = read_index(z.index_file(last))
        _, dl = read_data(z.data_file(last))
        e0 = {e["key"]: e for e in i0}
        # both old entries in i0 were flagged deleted in place
        self.assertEqual(e0[b"old-a"]["flags"] & 1, 1)
        self.assertEqual(e0[b"old-b"]["flags"] & 1, 1)
        self.assertEqual(e0[b"fill00"]["flags"] & 1, 0)
        a1, a2 = [e for e in il if e["key"] == b"old-a"]
        self.assertEqual((a1["parentid"], a1["parentoff"]), (0, e0[b"old-a"]["pos"]))
        self.assertEqual((a2["parentid"], a2["parentoff"]), (last, a1["pos"]))
        self.assertEqual((a1["flags"] & 1, a2["flags"] & 1), (1, 0))
        self.assertFalse(any(e["key"] == b"old-b" for e in il), "DEL appended an index entry")
        tomb = [e for e in dl if e["key"] == b"old-b"]
        self.assertEqual(len(tomb), 1)
        self.assertEqual((tomb[0]["length"], tomb[0]["flags"], tomb[0]["crc"]), (0, 1, 0))
        self.assertEqual(dl[-1]["key"], b"old-b")


class TestZdbReads0db(ZdbTestCase):
    """Directories laid out by the Python writer exactly as 0-db v2 would."""

    def setUp(self):
        self.z = self.new_zdb(start=False)
        self.ts = int(time.time()) - 500

    def make_default(self):
        w = NsWriter(self.z.index_dir, self.z.data_dir, "default")
        w.set(b"dkey", b"default value", self.ts)
        w.flush()

    def test_user_namespace(self):
        self.make_default()
        w = NsWriter(self.z.index_dir, self.z.data_dir, "legacy")
        ts = self.ts
        for i in range(1, 7):
            w.set(b"k%d" % i, b"value %d" % i * i, ts + i)
        w.set(b"bin\x00\r\n", bytes(range(256)), ts)
        w.set(b"empty", b"", ts)
        w.jump()
        w.set(b"k2", b"k2 overwritten in file 1", ts + 10)
        w.delete(b"k3", ts + 11)
        w.set(b"k7", b"seven", ts + 12)
        w.set(b"k4", b"k4 overwritten", ts + 13)
        w.delete(b"k4", ts + 14)
        w.flush()
        expected = {b"k1": b"value 1", b"k2": b"k2 overwritten in file 1", b"k3": None, b"k4": None,
                    b"k5": b"value 5" * 5, b"k6": b"value 6" * 6, b"k7": b"seven",
                    b"bin\x00\r\n": bytes(range(256)), b"empty": b""}
        self.z.start()
        c = self.client(self.z)
        self.assertEqual(c.cmd("GET", "dkey"), b"default value")
        self.assertEqual(sorted(c.cmd("NSLIST")), [b"default", b"legacy"])
        info = zdbtest.info_dict(c.cmd("NSINFO", "legacy"))
        self.assertEqual(info["mode"], "userkey")
        live = {k: v for k, v in expected.items() if v is not None}
        self.assertEqual(info["entries"], str(len(live)))
        self.assertEqual(info["data_size_bytes"], str(sum(len(v) for v in live.values())))
        self.assertEqual(c.cmd("SELECT", "legacy"), "OK")
        for k, v in expected.items():
            self.assertEqual(c.cmd("GET", k), v, k)
        self.assertEqual(c.cmd("DBSIZE"), len(live))
        self.assertEqual(c.cmd("KEYTIME", "k7"), ts + 12)
        self.assertEqual(c.cmd("CHECK", "k1"), 1)
        # keep writing on top of the 0-db files, then restart
        self.assertEqual(c.cmd("SET", "k1", "new k1"), b"k1")
        self.assertEqual(c.cmd("SET", "k8", "eight"), b"k8")
        self.assertEqual(c.cmd("DEL", "k5"), "OK")
        c.close()
        self.z.restart()
        c = self.client(self.z)
        c.cmd("SELECT", "legacy")
        expected.update({b"k1": b"new k1", b"k8": b"eight", b"k5": None})
        for k, v in expected.items():
            self.assertEqual(c.cmd("GET", k), v, k)

    def test_seq_namespace(self):
        self.make_default()
        w = NsWriter(self.z.index_dir, self.z.data_dir, "seqns", mode=1)
        for i in range(4):
            w.seq_add(b"seq value %d" % i, self.ts + i)
        w.seq_delete(1, self.ts + 5)
        w.flush()
        self.z.start()
        c = self.client(self.z)
        self.assertEqual(zdbtest.info_dict(c.cmd("NSINFO", "seqns"))["mode"], "sequential")
        self.assertEqual(zdbtest.info_dict(c.cmd("NSINFO", "default"))["mode"], "userkey")
        c.cmd("SELECT", "seqns")
        self.assertEqual(c.cmd("GET", le64(0)), b"seq value 0")
        self.assertIsNone(c.cmd("GET", le64(1)))
        self.assertEqual(c.cmd("GET", le64(3)), b"seq value 3")
        self.assertIsNone(c.cmd("GET", le64(4)))
        self.assertEqual(c.cmd("DBSIZE"), 3)
        self.assertEqual(c.cmd("SET", "", "appended by zdb"), le64(4))
        self.assertEqual(c.cmd("SET", le64(2), "updated by zdb"), le64(2))
        c.close()
        self.z.restart()
        c = self.client(self.z)
        c.cmd("SELECT", "seqns")
        self.assertEqual(c.cmd("GET", le64(4)), b"appended by zdb")
        self.assertEqual(c.cmd("GET", le64(2)), b"updated by zdb")
        self.assertEqual(c.cmd("GET", le64(0)), b"seq value 0")

    def test_seq_namespace_with_0db_update(self):
        w = NsWriter(self.z.index_dir, self.z.data_dir, "sequp", mode=1)
        w.seq_add(b"first", self.ts)
        w.seq_add(b"second", self.ts)
        w.seq_update(0, b"first, updated", self.ts + 1)  # the copy takes position 2
        w.flush()
        self.z.start()
        c = self.client(self.z)
        c.cmd("SELECT", "sequp")
        self.assertEqual(c.cmd("GET", le64(0)), b"first, updated")
        self.assertEqual(c.cmd("GET", le64(1)), b"second")
        self.assertIsNone(c.cmd("GET", le64(2)))
        self.assertEqual(c.cmd("DBSIZE"), 2)
        self.assertEqual(c.cmd("SET", "", "third"), le64(3))

    def test_namespace_descriptor(self):
        w = NsWriter(self.z.index_dir, self.z.data_dir, "private", password=b"letmein", maxsize=100000,
                     public=False, worm=True)
        w.set(b"secret", b"data", self.ts)
        w.flush()
        self.z.start()
        c = self.client(self.z)
        info = zdbtest.info_dict(c.cmd("NSINFO", "private"))
        self.assertEqual((info["public"], info["worm"], info["password"], info["data_limits_bytes"]),
                         ("no", "yes", "yes", "100000"))
        self.assertError(c.cmd("SELECT", "private"), "Namespace protected and private")
        self.assertEqual(c.cmd("SELECT", "private", "letmein"), "OK")
        self.assertEqual(c.cmd("GET", "secret"), b"data")
        self.assertError(c.cmd("SET", "secret", "other"), "Namespace is protected by worm mode")

    def test_zdb_files_read_back_by_writer_model(self):
        # what zdb writes for a sequence of operations is what 0-db would write,
        # apart from the header timestamps
        z = self.new_zdb()
        c = z.client()
        ts = 1700000000
        ops = [("SET", b"x", b"1"), ("SET", b"y", b"2"), ("SET", b"x", b"3"), ("DEL", b"y"), ("SET", b"z", b"")]
        for op in ops:
            args = list(op) + [str(ts)]
            r = c.cmd(*args)
            self.assertNotIsInstance(r, zdbtest.RespError, (op, r))
        c.close()
        z.stop()
        model_root = os.path.join(z.tmpdir, "model")
        w = NsWriter(os.path.join(model_root, "index"), os.path.join(model_root, "data"), "default", created=0)
        for op in ops:
            if op[0] == "SET":
                w.set(op[1], op[2], ts)
            else:
                w.delete(op[1], ts)
        w.flush()
        with open(z.data_file(0), "rb") as f:
            got = f.read()
        with open(os.path.join(model_root, "data", "default", "d0"), "rb") as f:
            want = f.read()
        self.assertEqual(got[28:], want[28:], "data entries differ from 0-db's layout")
        self.assertEqual(got[:8] + got[24:28], want[:8] + want[24:28])
        with open(z.index_file(0), "rb") as f:
            got = f.read()
        with open(os.path.join(model_root, "index", "default", "i0"), "rb") as f:
            want = f.read()
        self.assertEqual(got[29:], want[29:], "index entries differ from 0-db's layout")
        self.assertEqual(got[:8] + got[24:29], want[:8] + want[24:29])


if __name__ == "__main__":
    zdbtest.main()
