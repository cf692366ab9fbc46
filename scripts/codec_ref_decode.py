#!/usr/bin/env python3
"""Independent reference reader for the qsfs codec format, version 1.

Written from docs/codec-format.md alone: it shares no code with lib/codec, and uses Python's
hashlib (BLAKE2b), the `cryptography` package (AES-GCM), its own GF(2^8) arithmetic and, for
decompression, the system's libsnappy / libzstd / liblz4 through ctypes.

Usage: codec_ref_decode.py DIR KEYHEX OUT
DIR holds `desc` (48 bytes) and `CHUNK.SHARD` files (decimal numbers) as written by
`codec_tool encode`; missing shard files are erasures. Prints the stream digest; exit 0 on
success, 1 on any check failure.

       codec_ref_decode.py check CODEC_TOOL
Encodes a matrix of inputs (every method, several k+m, empty/text/random, m shards lost)
with the C library and decodes them here; exit 0 when every output and digest matches,
77 (skipped) when the `cryptography` package is missing. Run by ctest as unit_codec_refdecode.
"""
import ctypes
import hashlib
import os
import struct
import sys

import subprocess
import tempfile

try:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:  # only the check mode can skip; decoding needs it
    AESGCM = None

CRC_POLY = 0x82F63B78


def crc32c(data, crc=0xFFFFFFFF, final=True):
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (CRC_POLY if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF if final else crc


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


GF_INV = [0] * 256
for x in range(1, 256):
    for y in range(1, 256):
        if gf_mul(x, y) == 1:
            GF_INV[x] = y
            break


def enc_row(r, k):
    if r < k:
        return [1 if c == r else 0 for c in range(k)]
    return [GF_INV[r ^ c] for c in range(k)]


def gf_invert(mat):
    n = len(mat)
    a = [row[:] + [1 if i == j else 0 for j in range(n)] for i, row in enumerate(mat)]
    for col in range(n):
        piv = next(r for r in range(col, n) if a[r][col])
        a[col], a[piv] = a[piv], a[col]
        inv = GF_INV[a[col][col]]
        a[col] = [gf_mul(v, inv) for v in a[col]]
        for r in range(n):
            if r != col and a[r][col]:
                f = a[r][col]
                a[r] = [v ^ gf_mul(f, w) for v, w in zip(a[r], a[col])]
    return [row[n:] for row in a]


class RefError(Exception):
    pass


def fail(msg):
    raise RefError(msg)


def decompress(method, body, plain_len):
    if method == 0:
        return body
    if method == 1:
        lib = ctypes.CDLL("libsnappy.so.1")
        out = ctypes.create_string_buffer(max(plain_len, 1))
        n = ctypes.c_size_t(plain_len)
        if lib.snappy_uncompress(body, ctypes.c_size_t(len(body)), out, ctypes.byref(n)) != 0:
            fail("snappy")
        return out.raw[: n.value]
    if method == 2:
        lib = ctypes.CDLL("libzstd.so.1")
        lib.ZSTD_decompress.restype = ctypes.c_size_t
        out = ctypes.create_string_buffer(max(plain_len, 1))
        r = lib.ZSTD_decompress(out, ctypes.c_size_t(plain_len), body, ctypes.c_size_t(len(body)))
        if r != plain_len:
            fail("zstd")
        return out.raw[:plain_len]
    if method == 3:
        lib = ctypes.CDLL("liblz4.so.1")
        out = ctypes.create_string_buffer(max(plain_len, 1))
        r = lib.LZ4_decompress_safe(body, out, len(body), plain_len)
        if r != plain_len:
            fail("lz4")
        return out.raw[:plain_len]
    fail("method %d" % method)


def check(tool):
    if AESGCM is None:
        print("skipped: python3 cryptography package missing")
        return 77
    key = bytes(range(32)).hex()
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        text = b"".join(b"shard %d of the codec reference check. " % i for i in range(700))
        inputs = {"empty": b"", "text": text, "random": os.urandom(9000)}
        for name, data in inputs.items():
            src = os.path.join(tmp, name)
            open(src, "wb").write(data)
            for method in ("none", "snappy", "zstd", "lz4"):
                for k, m in ((1, 1), (4, 2), (10, 4)):
                    d = os.path.join(tmp, "%s_%s_%d_%d" % (name, method, k, m))
                    os.mkdir(d)
                    enc = subprocess.run([tool, "encode", "-k", str(k), "-m", str(m), "-c", "4096",
                                          "-z", method, "-K", key, "-w", "0", src, d],
                                         capture_output=True, text=True)
                    if enc.returncode != 0:
                        print("encode failed:", d, enc.stderr)
                        failures += 1
                        continue
                    want = hashlib.blake2b(data, digest_size=16).hexdigest()
                    if enc.stdout.split()[0] != want:
                        print("encoder digest differs:", d)
                        failures += 1
                    # Lose the first m data shards of every chunk: forces reconstruction.
                    for f in os.listdir(d):
                        if f != "desc" and int(f.split(".")[1]) < m:
                            os.unlink(os.path.join(d, f))
                    try:
                        out, digest = decode_dir(d, bytes.fromhex(key))
                        if out != data or digest.hex() != want:
                            fail("output or digest differs")
                    except RefError as e:
                        print("reference decode failed:", d, e)
                        failures += 1
    print("%s: %d failures" % ("ok" if failures == 0 else "FAILED", failures))
    return 1 if failures else 0


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "check":
        sys.exit(check(sys.argv[2]))
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    if AESGCM is None:
        print("FAIL: the python3 cryptography package is needed", file=sys.stderr)
        sys.exit(1)
    try:
        out, digest = decode_dir(sys.argv[1], bytes.fromhex(sys.argv[2]))
    except RefError as e:
        print("FAIL: %s" % e, file=sys.stderr)
        sys.exit(1)
    open(sys.argv[3], "wb").write(out)
    print(digest.hex())


def decode_dir(d, key):
    """Decodes the stream in directory d; returns (plaintext, digest) or raises RefError."""
    desc = open(os.path.join(d, "desc"), "rb").read()
    if len(desc) != 48 or desc[:4] != b"QSCD" or desc[4] != 1:
        fail("descriptor header")
    if struct.unpack("<I", desc[44:48])[0] != crc32c(desc[:44]):
        fail("descriptor crc")
    k, m = desc[5], desc[6]
    n = k + m
    chunk_size = struct.unpack("<I", desc[8:12])[0]
    file_id, kcv = desc[12:28], desc[28:44]
    h = lambda person, size: hashlib.blake2b(b"", key=key, salt=file_id, person=person,
                                             digest_size=size).digest()
    if h(b"qsfs-codec-kcv-1", 16) != kcv:
        fail("wrong key")
    aes = AESGCM(h(b"qsfs-codec-key-1", 32))
    aad_prefix = b"QSCODEC1" + bytes([1, k, m, 0]) + struct.pack("<I", chunk_size) + file_id

    out = bytearray()
    j = 0
    digest = None
    while True:
        shards = {}
        for i in range(n):
            p = os.path.join(d, "%d.%d" % (j, i))
            if not os.path.exists(p):
                continue
            sh = open(p, "rb").read()
            if len(sh) < 64 or sh[:4] != b"QSSH" or sh[4] != 1:
                continue
            s = struct.unpack("<I", sh[56:60])[0]
            if len(sh) != 64 + s or struct.unpack("<I", sh[60:64])[0] != crc32c(sh[:60] + sh[64:]):
                continue
            if (sh[5], sh[6], sh[7]) != (k, m, i) or sh[8:12] != desc[8:12] \
                    or sh[12:28] != file_id or sh[28:44] != kcv \
                    or struct.unpack("<Q", sh[44:52])[0] != j or sh[53:56] != b"\0\0\0":
                continue
            shards[i] = sh
        if not shards:
            break
        if len(shards) < k:
            fail("chunk %d: %d shards" % (j, len(shards)))
        use = sorted(shards)[:k]
        s = len(shards[use[0]]) - 64
        flags = shards[use[0]][52]
        inv = gf_invert([enc_row(r, k) for r in use])
        data = []
        for c in range(k):
            if c in shards:
                data.append(shards[c][64:])
                continue
            coef = inv[c]
            buf = bytearray(s)
            for t, r in enumerate(use):
                if coef[t]:
                    src = shards[r][64:]
                    for b in range(s):
                        buf[b] ^= gf_mul(coef[t], src[b])
            data.append(bytes(buf))
        rec = b"".join(data)
        hdr = rec[:16]
        method, rflags = hdr[0], hdr[1]
        plain_len, ct_len = struct.unpack("<II", hdr[4:12])
        if rflags != flags or 32 + ct_len > k * s or any(rec[32 + ct_len:]):
            fail("chunk %d: record header or padding" % j)
        nonce = struct.pack("<Q", j) + b"\0\0\0\0"
        aad = aad_prefix + struct.pack("<Q", j) + hdr
        try:
            pt = aes.decrypt(nonce, rec[16:16 + ct_len + 16], aad)
        except Exception:
            fail("chunk %d: authentication" % j)
        final = rflags & 1
        if final:
            pt, digest = pt[:-16], pt[-16:]
        body = decompress(method, pt, plain_len)
        if len(body) != plain_len or (not final and plain_len != chunk_size):
            fail("chunk %d: length" % j)
        out += body
        j += 1
        if final:
            break
    if digest is None:
        fail("no final chunk")
    if hashlib.blake2b(bytes(out), digest_size=16).digest() != digest:
        fail("stream digest")
    return bytes(out), digest


if __name__ == "__main__":
    main()
