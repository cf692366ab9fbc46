#!/usr/bin/env python3
"""Independent reference reader for the qsfs metadata format, version 1.

Written from docs/meta-format.md alone: it shares no code with lib/meta and uses Python's
hashlib (BLAKE2b), the `cryptography` package (AES-GCM) and its own CRC-32C, GF(2^8) and
Reed-Solomon arithmetic.

Usage: meta_ref_decode.py FIXTURE
FIXTURE is tests/unit/meta_golden_v1.txt: a meta key, a path with its prefix and root, the
key name, the plaintext record and four sealed pieces (2 data + 2 parity). The script
computes the key name from the path (section 1), opens the record from every pair of pieces
(section 4), decrypts it (section 3), checks it equals the record bytes, parses it
(section 2) and compares every field with the values the fixture was built from (written
out below by hand). Exit 0 when everything matches, 1 on a mismatch, 77 (skipped) when the
`cryptography` package is missing. Run by ctest as unit_meta_refdecode.
"""
import hashlib
import itertools
import struct
import sys

try:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:
    AESGCM = None


class Bad(Exception):
    pass


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def b2(data, n, key=b"", salt=b"", person=b""):
    return hashlib.blake2b(data, digest_size=n, key=key, salt=salt, person=person).digest()


# ---- section 1: keys -------------------------------------------------------------------


def clean(path):
    """Plan 9 cleanname / Go path.Clean."""
    rooted = path.startswith("/")
    out = []
    for e in path.split("/"):
        if e in ("", "."):
            continue
        if e == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(e)
    s = ("/" if rooted else "") + "/".join(out)
    return s or "."


def key_name(prefix, root, path):
    p = clean(path)
    if root:
        r = clean(root)
        if r == "/":
            if not p.startswith("/"):
                raise Bad("outside root")
            p = p[1:]
        elif p.startswith(r + "/"):
            p = p[len(r) + 1:]
        else:
            raise Bad("outside root")
    return "/%s/meta/%s" % (prefix, b2(p.encode(), 16).hex())


# ---- section 4: pieces and Reed-Solomon ------------------------------------------------


def gf_mul(a, b):
    r = 0
    while b:
        if b & 1:
            r ^= a
        a <<= 1
        if a & 0x100:
            a ^= 0x11D
        b >>= 1
    return r


def gf_inv(a):
    for y in range(1, 256):
        if gf_mul(a, y) == 1:
            return y
    raise Bad("no inverse")


def enc_row(r, k):
    if r < k:
        return [1 if c == r else 0 for c in range(k)]
    return [gf_inv(r ^ c) for c in range(k)]


def mat_inv(m):
    n = len(m)
    a = [row[:] + [1 if i == j else 0 for j in range(n)] for i, row in enumerate(m)]
    for col in range(n):
        piv = next(r for r in range(col, n) if a[r][col])
        a[col], a[piv] = a[piv], a[col]
        iv = gf_inv(a[col][col])
        a[col] = [gf_mul(x, iv) for x in a[col]]
        for r in range(n):
            if r != col and a[r][col]:
                f = a[r][col]
                a[r] = [x ^ gf_mul(f, y) for x, y in zip(a[r], a[col])]
    return [row[n:] for row in a]


def parse_piece(p):
    if len(p) < 44 or p[:4] != b"QSMP" or p[4] != 1:
        raise Bad("piece header")
    idx, data, parity = p[5], p[6], p[7]
    wid, at, blen, s, crc = p[8:24], *struct.unpack_from("<QIII", p, 24)
    if len(p) != 44 + s or crc != crc32c(p[:40] + p[44:]):
        raise Bad("piece length or crc")
    if data < 1 or data + parity > 255 or idx >= data + parity or blen < 72:
        raise Bad("piece fields")
    if s != -(-blen // data):
        raise Bad("payload length")
    return dict(idx=idx, data=data, parity=parity, wid=wid, at=at, blen=blen, s=s,
                payload=p[44:])


def assemble(pieces):
    """Blob from any `data` pieces of one write."""
    k = pieces[0]["data"]
    rows = [enc_row(p["idx"], k) for p in pieces]
    inv = mat_inv(rows)
    s = pieces[0]["s"]
    out = bytearray()
    for d in range(k):
        for i in range(s):
            v = 0
            for j, p in enumerate(pieces):
                v ^= gf_mul(inv[d][j], p["payload"][i])
            out.append(v)
    blen = pieces[0]["blen"]
    if any(out[blen:]):
        raise Bad("padding")
    return bytes(out[:blen])


def parity_payloads(blob, data, parity, s):
    padded = blob + bytes(data * s - len(blob))
    chunks = [padded[i * s:(i + 1) * s] for i in range(data)]
    out = []
    for r in range(data, data + parity):
        row = enc_row(r, data)
        out.append(bytes(
            _xor_all(gf_mul(row[c], chunks[c][i]) for c in range(data)) for i in range(s)))
    return out


def _xor_all(it):
    v = 0
    for x in it:
        v ^= x
    return v


# ---- section 3: encryption -------------------------------------------------------------


def decrypt(blob, meta_key, name):
    if blob[:4] != b"QSME" or blob[4] != 1 or blob[5] != 1 or blob[6:8] != b"\0\0":
        raise Bad("blob header")
    salt, nonce = blob[8:24], blob[24:36]
    (length,) = struct.unpack_from("<I", blob, 36)
    if 72 + length != len(blob):
        raise Bad("blob length")
    if blob[40:56] != b2(b"", 16, meta_key, salt, b"qsfs-meta-kcv-01"):
        raise Bad("wrong meta key")
    aes = b2(b"", 32, meta_key, salt, b"qsfs-meta-key-01")
    nb = name.encode()
    aad = blob[:56] + struct.pack("<I", len(nb)) + nb
    return AESGCM(aes).decrypt(nonce, blob[56:], aad)


# ---- section 2: the record -------------------------------------------------------------


class Reader:
    def __init__(self, b):
        self.b, self.o = b, 0

    def take(self, n):
        if n > len(self.b) - self.o:
            raise Bad("truncated at %d" % self.o)
        v = self.b[self.o:self.o + n]
        self.o += n
        return v

    def u8(self):
        return self.take(1)[0]

    def uvar(self):
        v = 0
        for i in range(10):
            b = self.u8()
            v |= (b & 0x7F) << (7 * i)
            if not b & 0x80:
                if i and b == 0:
                    raise Bad("varint not minimal")
                if v >= 1 << 64:
                    raise Bad("varint too big")
                return v
        raise Bad("varint too long")

    def str(self, lo, hi, text=True):
        n = self.uvar()
        if not lo <= n <= hi:
            raise Bad("string length")
        v = self.take(n)
        return v.decode("utf-8") if text else v


def parse_record(b):
    if len(b) < 116 or b[:4] != b"QSMR" or b[4] != 1:
        raise Bad("record header")
    if struct.unpack_from("<I", b, len(b) - 4)[0] != crc32c(b[:-4]):
        raise Bad("record crc")
    flags, comp, level = b[5], b[6], struct.unpack_from("<b", b, 7)[0]
    size, mtime, mns, mode, stored, nchunks = struct.unpack_from("<QqIIQQ", b, 8)
    desc = b[64:112]
    if desc[:4] != b"QSCD" or desc[4] != 1 or crc32c(desc[:44]) != struct.unpack_from("<I", desc, 44)[0]:
        raise Bad("descriptor")
    k, m = desc[5], desc[6]
    rec = dict(flags=flags, compress=comp, level=level, size=size, mtime=mtime, mtime_ns=mns,
               mode=mode, stored=stored, nchunks=nchunks, checksum=b[48:64].hex(), k=k, m=m,
               chunk_size=struct.unpack_from("<I", desc, 8)[0], file_id=desc[12:28],
               kcv=desc[28:44], shards=[])
    r = Reader(b[:-4])
    r.o = 112
    rec["path"] = r.str(1, 4096)
    for _ in range(k + m):
        sf = r.u8()
        absent = sf & 1
        sh = dict(absent=bool(absent), address=r.str(0 if absent else 1, 4096), ns=r.str(0, 255))
        if not absent:
            kind = r.u8()
            layout, total, chunks = [], 0, 0
            for _ in range(r.uvar()):
                c, p = r.uvar(), r.uvar()
                if c < 1 or not 1 <= p <= 65535 or (layout and layout[-1][1] == p):
                    raise Bad("layout run")
                layout.append((c, p))
                chunks += c
                total += c * p
            if chunks != nchunks:
                raise Bad("layout chunks")
            keys = []
            if kind == 0:
                end = 0
                for j in range(r.uvar()):
                    z, cnt = r.uvar(), r.uvar()
                    start = (end + ((z >> 1) ^ -(z & 1))) % (1 << 64)
                    if cnt < 1 or (j and start == end) or start + cnt > (1 << 64) - 1:
                        raise Bad("id run")
                    keys += list(range(start, start + cnt))
                    end = start + cnt
            elif kind == 1:
                keys = [r.str(1, 255, text=False) for _ in range(total)]
            else:
                raise Bad("key kind")
            if len(keys) != total:
                raise Bad("key count")
            per_chunk, it = [], iter(keys)
            for c, p in layout:
                for _ in range(c):
                    per_chunk.append([next(it) for _ in range(p)])
            sh["kind"] = kind
            sh["chunks"] = per_chunk
            if flags & 1:
                sh["crc"] = [struct.unpack("<I", r.take(4))[0] for _ in range(nchunks)]
        rec["shards"].append(sh)
    if r.o != len(r.b):
        raise Bad("trailing bytes")
    return rec


# What the fixture was built from (see the generator in the commit that added it).
EXPECTED = dict(
    flags=1, compress=2, level=3, size=200, mtime=1700000000, mtime_ns=123456789,
    mode=0o100640, stored=1700000100, nchunks=4, checksum=bytes(range(16)).hex(), k=2, m=2,
    chunk_size=64, file_id=b"golden-file-id-1", path="ünïcødé/golden.bin",
    shards=[
        dict(absent=False, address="[::1]:9900", ns="meta-golden-0", kind=0,
             chunks=[[5], [6], [7, 8, 9], [100]], crc=[0, 16, 32, 48]),
        dict(absent=False, address="127.0.0.1:9901", ns="", kind=0,
             chunks=[[42], [40], [41, 43, 44], [45]], crc=[1, 17, 33, 49]),
        dict(absent=False, address="dir:///srv/qsfs/02", ns="", kind=1,
             chunks=[[b"00/a"], [b"00/b"], [b"00/c.0", b"00/c.1", b"00/c.2"], [b"x" * 200]],
             crc=[2, 18, 34, 50]),
        dict(absent=True, address="[::1]:9903", ns="lost"),
    ],
)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    if AESGCM is None:
        print("meta_ref_decode: python3 cryptography package missing, skipped")
        return 77
    fx = {}
    for line in open(sys.argv[1], encoding="utf-8"):
        line = line.rstrip("\n")
        if line and not line.startswith("#"):
            k, v = line.split(" ", 1)
            fx[k] = v
    meta_key, data_key = bytes.fromhex(fx["metakey"]), bytes.fromhex(fx["datakey"])
    name = key_name(fx["prefix"], fx["root"], fx["path"])
    if name != fx["name"]:
        raise Bad("key name %s, fixture says %s" % (name, fx["name"]))
    pieces = [parse_piece(bytes.fromhex(fx["piece%d" % i])) for i in range(4)]
    if len({(p["wid"], p["at"], p["blen"], p["s"]) for p in pieces}) != 1:
        raise Bad("pieces of different writes")
    blobs = {assemble(list(pair)) for pair in itertools.combinations(pieces, 2)}
    if len(blobs) != 1:
        raise Bad("pairs of pieces disagree")
    blob = blobs.pop()
    par = parity_payloads(blob, 2, 2, pieces[0]["s"])
    if par != [pieces[2]["payload"], pieces[3]["payload"]]:
        raise Bad("parity pieces")
    plain = decrypt(blob, meta_key, name)
    if plain != bytes.fromhex(fx["record"]):
        raise Bad("decrypted record differs from the fixture's record")
    try:
        decrypt(blob, data_key, name)
        raise Bad("opened with the data key")
    except Bad as e:
        if "wrong meta key" not in str(e):
            raise
    rec = parse_record(plain)
    want_kcv = b2(b"", 16, data_key, rec["file_id"], b"qsfs-codec-kcv-1")
    if rec.pop("kcv") != want_kcv:
        raise Bad("descriptor key check value")
    if rec != EXPECTED:
        for key in EXPECTED:
            if rec.get(key) != EXPECTED[key]:
                print("field %s: got %r want %r" % (key, rec.get(key), EXPECTED[key]))
        raise Bad("record fields differ")
    print("meta_ref_decode: %s: key, 6 piece pairs, decryption and every record field match"
          % fx["name"])
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (Bad, KeyError, ValueError) as e:
        print("meta_ref_decode: FAIL: %s" % e)
        sys.exit(1)
