#!/usr/bin/env python3
"""Writes the seed corpus of fuzz/zdb_commands.c: one file per scenario, together covering
every command of the table (and its prefixes, error forms and admin forms), malformed RESP,
both modes, --admin/--protect, two clients and WAIT.

Byte 0 of each file is the configuration byte described in zdb_commands.c; the rest is a
RESP stream. Run from anywhere: python3 fuzz/make_zdb_commands_corpus.py"""

import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "zdb_commands")

ADMIN, PROTECT, USER, SEQ, SYNC, ALT, BATCH, MMAP = 1, 2, 4, 8, 16, 32, 64, 128


def req(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = str(a).encode()
        elif isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def le64(n):
    return struct.pack("<Q", n)


def ekey(fileid, off):
    return struct.pack("<II", fileid, off)


SEEDS = {
    "system": (0, [req("PING"), req("PING", "x"), req("PI"), req("TIME"), req("INFO"), req("DBSIZE"),
                   req("STOP"), req("*"), req("NOPE"), req("AUTH", "pw"), req("AUTH"),
                   req("AUTH", "SECURE", "CHALLENGE"), req("AUTH", "SECURE", "0" * 40)]),
    "auth_admin": (ADMIN, [req("NSNEW", "x"), req("AUTH", "bad"), req("AUTH", "pw"), req("NSNEW", "x"),
                           req("AUTH", "SECURE", "CHALLENGE"), req("AUTH", "SECURE", "ab" * 20),
                           req("AUTH", "SECURE", "short"), req("AUTH", "x" * 130), req("COMPACT"),
                           req("SET", "k", "v", "1234"), req("DEL", "k", "1235")]),
    "protect": (ADMIN | PROTECT, [req("SET", "k", "v"), req("SELECT", "default", "pw"), req("SET", "k", "v"),
                                  req("SELECT", "default", "SECURE", "0" * 40), req("GET", "k")]),
    "data_user": (USER, [req("SET", "a", "1"), req("SETX", "b", "22"), req("SET", "a", "1"), req("S", "c", ""),
                         req("GET", "a"), req("G", "zz"), req("MGET", "a", "b", "zz"), req("MGET", "a"),
                         req("EXISTS", "a"), req("EXISTS", "q"), req("CHECK", "b"), req("LENGTH", "b"),
                         req("KEYTIME", "b"), req("DEL", "a"), req("DEL", "a"), req("SET", "", "v"),
                         req("SET", "k" * 256, "v"), req("GET", "k" * 256), req("SET", "a"),
                         req("SET", "t", "v", "99"), req("DEL", "t", "100"), req("DBSIZE")]),
    "data_seq": (SEQ, [req("SET", "", "v0"), req("SET", "", "v1"), req("SET", le64(0), "v0b"),
                       req("SET", le64(7), "x"), req("SET", "abc", "x"), req("GET", le64(0)),
                       req("GET", le64(2)), req("GET", "short"), req("DEL", le64(1)), req("SET", le64(1), "z"),
                       req("LENGTH", le64(0)), req("KEYTIME", le64(0)), req("CHECK", le64(0)),
                       req("HISTORY", le64(0)), req("SCAN"), req("RSCAN"), req("DBSIZE")]),
    "scan": (USER, [req("SET", "a", "1"), req("SET", "b", "2"), req("SET", "a", "3"), req("DEL", "b"),
                    req("SCAN"), req("SCANX"), req("RSCAN"), req("KSCAN", "a"), req("KEYCUR", "a"),
                    req("KEYCUR", "b"), req("SCAN", "x" * 17), req("RSCAN", b"\x01" + b"\x00" * 16),
                    req("SCAN", "short"), req("HISTORY", "a"), req("HISTORY", "a", ekey(0, 29)),
                    req("HISTORY", "a", ekey(0, 0)), req("HISTORY", "a", "bad"), req("HISTORY", "zz"),
                    req("HISTORY")]),
    "namespaces": (0, [req("NSNEW", "ns1"), req("NSNEW", "ns1"), req("NSNEW", "default"), req("NSNEW", "a/b"),
                       req("NSNEW", ".."), req("NSNEW", "n" * 129), req("NSLIST"), req("NSINFO", "ns1"),
                       req("NSINFO", "nope"), req("SELECT", "ns1"), req("SET", "k", "v"), req("NSJUMP"),
                       req("SET", "k", "w"), req("SELECT", "default"), req("NSDEL", "ns1"),
                       req("NSDEL", "default"), req("NSDEL", "nope"), req("NSLIST")]),
    "nsset": (0, [req("NSNEW", "p"), req("NSSET", "p", "password", "secret"), req("NSSET", "p", "public", "0"),
                  req("NSSET", "p", "maxsize", "10"), req("NSSET", "p", "worm", "1"), req("NSSET", "p", "lock", "1"),
                  req("NSSET", "p", "freeze", "1"), req("NSSET", "p", "freeze", "0"), req("NSSET", "p", "lock", "0"),
                  req("NSSET", "p", "mode", "seq"), req("NSSET", "p", "mode", "bad"), req("NSSET", "p", "bad", "1"),
                  req("NSSET", "p", "password", "x" * 64), req("NSSET", "default", "public", "0"),
                  req("NSSET", "default", "freeze", "1"), req("GET", "k"), req("NSSET", "default", "freeze", "0"),
                  req("SELECT", "p"), req("SELECT", "p", "wrong"), req("SELECT", "p", "secret"),
                  req("SET", "k", "0123456789abc"), req("SET", "k", "v"), req("DEL", "k"), req("FLUSH"),
                  req("SELECT", "default"), req("FLUSH"), req("NSSET", "p", "password", "*")]),
    "mixed_mode": (0, [req("NSNEW", "s"), req("NSSET", "s", "mode", "seq"), req("SELECT", "s"),
                       req("SET", "", "a"), req("NSSET", "s", "mode", "user"), req("SET", "", "b"),
                       req("GET", le64(1)), req("NSINFO", "s"), req("RELOAD", "s"), req("GET", le64(1)),
                       req("RELOAD", "nope"), req("RELOAD")]),
    "admin_cmds": (0, [req("SET", "a", "1"), req("HOOKS"), req("INDEX", "DIRTY"), req("INDEX", "DIRTY", "RESET"),
                       req("INDEX", "BAD"), req("DATA", "RAW", "0", "28"), req("DATA", "RAW", "0", "5"),
                       req("DATA", "RAW", "9", "28"), req("DATA", "RAW", "x", "y"), req("DATA", "BAD"),
                       req("MIRROR"), req("MASTER"), req("NSJUMP"), req("INDEX", "DIRTY")]),
    "compact": (USER, [req("SET", "a", "1" * 300), req("SET", "b", "2" * 300), req("SET", "a", "3" * 300),
                       req("DEL", "b"), req("NSJUMP"), req("SET", "c", "4"), req("COMPACT", "0"),
                       req("COMPACT", "1"), req("COMPACT", "7"), req("COMPACT", "x"), req("CO", "*"),
                       req("COMPACT"), req("COMPACT", "1", "2"), req("GET", "a"), req("HISTORY", "a"),
                       req("HISTORY", "a", ekey(0, 29)), req("SCAN"), req("DATA", "RAW", "0", "28")]),
    "compact_seq": (SEQ | MMAP, [req("SET", "", "a" * 100), req("SET", "", "b" * 100), req("SET", le64(0), "c"),
                                 req("DEL", le64(1)), req("NSJUMP"), req("SET", le64(0), "d"), req("NSJUMP"),
                                 req("COMPACT", "*"), req("GET", le64(0)), req("HISTORY", le64(0)),
                                 req("COMPACT", "0"), req("RELOAD", "default"), req("GET", le64(0))]),
    "wait": (ALT, [req("WAIT", "SET", "1000"), req("SET", "k", "v"), req("WAIT", "*"), req("PING"),
                   req("WAIT", "GET", "50"), req("WAIT", "NOPE"), req("WAIT"), req("GET", "k"),
                   req("WAIT", "DEL", "200"), req("WAIT", "SET", "200"), req("PING")]),
    "two_clients": (ALT | BATCH | SYNC, [req("NSNEW", "x"), req("SELECT", "x"), req("SET", "k", "v"),
                                         req("NSDEL", "x"), req("GET", "k"), req("PING"), req("NSLIST")]),
    "malformed": (0, [b"PING\r\n", req("PING")]),
    "malformed2": (0, [req("SET", "a", "1"), b"*2\r\n$3\r\nGET\r\n:1\r\n", req("GET", "a"), b"*0\r\n",
                       req("PING")]),
    "malformed3": (0, [b"*1\r\n$99999999\r\n", req("PING")]),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, (conf, parts) in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(bytes([conf]) + b"".join(parts))
    print("wrote %d seeds to %s" % (len(SEEDS), OUT))


if __name__ == "__main__":
    main()
