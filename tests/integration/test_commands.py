#!/usr/bin/env python3
"""zdb integration tests: command replies and error strings (spec sections 1, 2 and 4)."""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zdbtest  # noqa: E402
from zdbtest import RespError, ZdbTestCase  # noqa: E402

INFO_SECTIONS = ["# server", "# clients", "# internals", "# stats"]
INFO_KEYS = {
    "# server": ["server_name", "server_revision", "engine_revision", "instance_id", "boot_time", "uptime"],
    "# clients": ["clients_lifetime"],
    "# internals": ["sequential_key_size", "data_version", "index_version"],
    # the exact stat names are the ones 0-db v2 prints (the spec lists them loosely)
    "# stats": ["commands_executed", "commands_failed", "commands_unauthorized",
                "index_disk_read_failed", "index_disk_write_failed",
                "data_disk_read_failed", "data_disk_write_failed",
                "index_disk_read_bytes", "index_disk_read_mb",
                "index_disk_write_bytes", "index_disk_write_mb",
                "data_disk_read_bytes", "data_disk_read_mb",
                "data_disk_write_bytes", "data_disk_write_mb",
                "network_rx_bytes", "network_rx_mb", "network_tx_bytes", "network_tx_mb"],
}


def info_sections(text):
    """INFO text -> {section header: {key: value}} keeping the section order in a list."""
    order = []
    sections = {}
    current = None
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if not line:
            continue
        if line.startswith("#"):
            current = line.strip()
            order.append(current)
            sections[current] = {}
            continue
        key, sep, value = line.partition(": ")
        if current is not None and sep:
            sections[current][key] = value
    return order, sections


def _crc32c_zdb(data):
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc


def crc_twin(value):
    """A different value of the same length and the same zdb CRC-32C (the CRC is
    linear without init/xorout: flip a set of bits whose CRCs cancel out)."""
    n = len(value)
    assert n >= 8
    basis = {}
    for bit in range(64):
        d = bytearray(n)
        d[n - 8 + bit // 8] |= 1 << (bit % 8)
        v, mask = _crc32c_zdb(bytes(d)), 1 << bit
        while v:
            h = v.bit_length() - 1
            if h not in basis:
                basis[h] = (v, mask)
                break
            v ^= basis[h][0]
            mask ^= basis[h][1]
        if v == 0:
            break
    flip = bytearray(n)
    for bit in range(64):
        if mask >> bit & 1:
            flip[n - 8 + bit // 8] |= 1 << (bit % 8)
    twin = bytes(x ^ y for x, y in zip(value, flip))
    assert twin != value and _crc32c_zdb(twin) == _crc32c_zdb(value)
    return twin


class TestSystem(ZdbTestCase):
    def setUp(self):
        self.z = self.new_zdb()
        self.c = self.client(self.z)

    def test_ping(self):
        self.assertEqual(self.c.cmd("PING"), "PONG")
        self.assertEqual(self.c.cmd("PING", "hello"), "PONG")

    def test_command_names_case_insensitive(self):
        self.assertEqual(self.c.cmd("ping"), "PONG")
        self.assertEqual(self.c.cmd("PiNg"), "PONG")
        self.assertEqual(self.c.cmd("set", "lower", "v"), b"lower")
        self.assertEqual(self.c.cmd("gEt", "lower"), b"v")

    def test_command_prefix_matching(self):
        # names are matched as a prefix, in the table order of spec section 1
        self.assertEqual(self.c.cmd("PI"), "PONG")
        self.assertEqual(self.c.cmd("P"), "PONG")
        self.assertEqual(self.c.cmd("pi"), "PONG")
        t = self.c.cmd("TI")
        self.assertIsInstance(t, list)
        self.assertEqual(len(t), 2)
        self.assertEqual(self.c.cmd("S", "pfx", "value"), b"pfx")  # S -> SET
        self.assertEqual(self.c.cmd("G", "pfx"), b"value")  # G -> GET
        self.assertEqual(self.c.cmd("EX", "pfx"), 1)  # EX -> EXISTS
        self.assertEqual(self.c.cmd("LEN", "pfx"), 5)  # LEN -> LENGTH
        self.assertEqual(self.c.cmd("DB"), 1)  # DB -> DBSIZE
        info = self.c.cmd("INF")  # INF -> INFO (IN alone is INDEX)
        self.assertIsInstance(info, bytes)
        self.assertIn(b"# server", info)
        self.assertEqual(self.c.cmd("DE", "pfx"), "OK")  # DE -> DEL (D alone is DATA)
        self.assertEqual(self.c.cmd("G", "pfx"), None)

    def test_unknown_command(self):
        self.assertError(self.c.cmd("FOOBAR"), "Command not supported")
        self.assertError(self.c.cmd("FOOBAR", "x", "y"), "Command not supported")
        # a name longer than every table entry is not a prefix of any
        self.assertError(self.c.cmd("PINGPONG"), "Command not supported")
        self.assertError(self.c.cmd("GETX", "k"), "Command not supported")
        # the connection keeps working
        self.assertEqual(self.c.cmd("PING"), "PONG")

    def test_time(self):
        before = time.time()
        r = self.c.cmd("TIME")
        after = time.time()
        self.assertIsInstance(r, list)
        self.assertEqual(len(r), 2)
        self.assertIsInstance(r[0], bytes)
        self.assertIsInstance(r[1], bytes)
        self.assertRegex(r[0].decode(), r"^[0-9]+$")
        self.assertRegex(r[1].decode(), r"^[0-9]+$")
        sec, usec = int(r[0]), int(r[1])
        self.assertLess(usec, 1000000)
        # same machine clock: the reply lies between the two local readings
        self.assertGreaterEqual(sec + usec / 1e6, before - 1.0)
        self.assertLessEqual(sec + usec / 1e6, after + 1.0)

    def test_info_sections_and_keys(self):
        r = self.c.cmd("INFO")
        self.assertIsInstance(r, bytes)
        text = r.decode()
        # 0-db-fs looks for exactly this substring
        self.assertIn("sequential_key_size: 8", text)
        order, sections = info_sections(text)
        self.assertEqual(order, INFO_SECTIONS)
        for header, keys in INFO_KEYS.items():
            for k in keys:
                self.assertIn(k, sections[header], "INFO %s lacks %s" % (header, k))
        internals = sections["# internals"]
        self.assertEqual(internals["sequential_key_size"], "8")
        self.assertEqual(internals["data_version"], "3")
        self.assertEqual(internals["index_version"], "4")
        server = sections["# server"]
        self.assertRegex(server["boot_time"], r"^[0-9]+$")
        self.assertRegex(server["uptime"], r"^[0-9]+$")
        self.assertLessEqual(abs(int(server["boot_time"]) - time.time()), 120)
        self.assertRegex(server["instance_id"], r"^[0-9]+$")
        for k in INFO_KEYS["# stats"]:
            v = sections["# stats"][k]
            if k.endswith("_mb"):
                self.assertRegex(v, r"^[0-9]+\.[0-9]{2}$", k)
            else:
                self.assertRegex(v, r"^[0-9]+$", k)

    def test_info_counters_move(self):
        _, s1 = info_sections(self.c.cmd("INFO").decode())
        for i in range(5):
            self.c.cmd("SET", "cnt%d" % i, "v")
        self.c.cmd("FOOBAR")
        other = self.client(self.z)
        self.assertEqual(other.cmd("PING"), "PONG")
        _, s2 = info_sections(self.c.cmd("INFO").decode())
        st1, st2 = s1["# stats"], s2["# stats"]
        for k in ("commands_executed", "commands_failed", "network_rx_bytes", "network_tx_bytes",
                  "data_disk_write_bytes", "index_disk_write_bytes"):
            self.assertIn(k, st2, "INFO # stats lacks %s" % k)
        self.assertGreaterEqual(int(st2["commands_executed"]), int(st1["commands_executed"]) + 5)
        self.assertGreaterEqual(int(st2["commands_failed"]), int(st1["commands_failed"]) + 1)
        self.assertGreater(int(st2["network_rx_bytes"]), int(st1["network_rx_bytes"]))
        self.assertGreater(int(st2["network_tx_bytes"]), int(st1["network_tx_bytes"]))
        self.assertGreater(int(st2["data_disk_write_bytes"]), int(st1["data_disk_write_bytes"]))
        self.assertGreater(int(st2["index_disk_write_bytes"]), int(st1["index_disk_write_bytes"]))
        self.assertGreaterEqual(int(s2["# clients"]["clients_lifetime"]),
                                int(s1["# clients"]["clients_lifetime"]) + 1)


class TestData(ZdbTestCase):
    def setUp(self):
        self.z = self.new_zdb()
        self.c = self.client(self.z)

    def test_set_replies_key(self):
        self.assertEqual(self.c.cmd("SET", "hello", "world"), b"hello")
        self.assertEqual(self.c.cmd("GET", "hello"), b"world")

    def test_binary_key_and_value(self):
        key = b"\x00\r\n\xff*$bin"
        value = bytes(range(256)) * 3 + b"\r\n$-1\r\n"
        self.assertEqual(self.c.cmd("SET", key, value), key)
        self.assertEqual(self.c.cmd("GET", key), value)
        self.assertEqual(self.c.cmd("LENGTH", key), len(value))

    def test_set_identical_value_is_nil(self):
        self.assertEqual(self.c.cmd("SET", "same", "value-1"), b"same")
        self.assertIsNone(self.c.cmd("SET", "same", "value-1"))
        self.assertEqual(self.c.cmd("SET", "same", "value-2"), b"same")
        self.assertEqual(self.c.cmd("GET", "same"), b"value-2")
        self.assertIsNone(self.c.cmd("SET", "same", "value-2"))
        self.assertEqual(self.c.cmd("DBSIZE"), 1)

    def test_set_same_crc_different_bytes_is_stored(self):
        # "byte-identical" means bytes, not CRC: a value with the same CRC-32C and
        # length as the stored one is a real change (0-db v2 compares only the CRC)
        a = b"0123456789abcdef"
        b = crc_twin(a)
        self.assertNotEqual(a, b)
        self.assertEqual(self.c.cmd("SET", "twin", a), b"twin")
        self.assertEqual(self.c.cmd("SET", "twin", b), b"twin")
        self.assertEqual(self.c.cmd("GET", "twin"), b)

    def test_set_identical_value_writes_nothing(self):
        self.c.cmd("SET", "idem", "x" * 100)
        d0 = self.z.data_file(0)
        i0 = self.z.index_file(0)
        size_d, size_i = os.path.getsize(d0), os.path.getsize(i0)
        self.assertIsNone(self.c.cmd("SET", "idem", "x" * 100))
        self.assertEqual(os.path.getsize(d0), size_d)
        self.assertEqual(os.path.getsize(i0), size_i)

    def test_set_empty_key(self):
        self.assertError(self.c.cmd("SET", "", "v"), "Invalid argument, key needed")

    def test_key_length_limits(self):
        k255 = b"k" * 255
        self.assertEqual(self.c.cmd("SET", k255, "v255"), k255)
        self.assertEqual(self.c.cmd("GET", k255), b"v255")
        k256 = b"k" * 256
        self.assertError(self.c.cmd("SET", k256, "v"), "Key too large")
        self.assertError(self.c.cmd("GET", k256), "Invalid key")
        self.assertEqual(self.c.cmd("DBSIZE"), 1)

    def test_empty_value_allowed(self):
        self.assertEqual(self.c.cmd("SET", "empty", ""), b"empty")
        self.assertEqual(self.c.cmd("GET", "empty"), b"")
        self.assertEqual(self.c.cmd("EXISTS", "empty"), 1)
        self.assertEqual(self.c.cmd("LENGTH", "empty"), 0)
        self.assertEqual(self.c.cmd("CHECK", "empty"), 1)

    def test_setx_alias(self):
        self.assertEqual(self.c.cmd("SETX", "sx", "vx"), b"sx")
        self.assertEqual(self.c.cmd("GET", "sx"), b"vx")

    def test_set_wrong_argument_count(self):
        self.assertError(self.c.cmd("SET"), "Unexpected arguments")
        self.assertError(self.c.cmd("SET", "k"), "Unexpected arguments")
        self.assertError(self.c.cmd("SET", "k", "v", "1", "extra"), "Unexpected arguments")
        self.assertIsNone(self.c.cmd("GET", "k"))

    def test_set_with_timestamp(self):
        # without --admin every client is admin, so the timestamp form is allowed
        self.assertEqual(self.c.cmd("SET", "ts", "v", "1600000000"), b"ts")
        self.assertEqual(self.c.cmd("KEYTIME", "ts"), 1600000000)
        self.assertEqual(self.c.cmd("GET", "ts"), b"v")

    def test_get(self):
        self.assertIsNone(self.c.cmd("GET", "missing"))
        self.assertError(self.c.cmd("GET", ""), "Invalid argument")
        self.assertError(self.c.cmd("GET"), "Unexpected arguments")
        self.assertError(self.c.cmd("GET", "a", "b"), "Unexpected arguments")

    def test_overwrite(self):
        self.c.cmd("SET", "ow", "first")
        self.assertEqual(self.c.cmd("SET", "ow", "second, longer"), b"ow")
        self.assertEqual(self.c.cmd("GET", "ow"), b"second, longer")
        self.assertEqual(self.c.cmd("LENGTH", "ow"), len("second, longer"))
        self.assertEqual(self.c.cmd("DBSIZE"), 1)

    def test_del(self):
        self.c.cmd("SET", "d1", "v")
        self.assertEqual(self.c.cmd("DEL", "d1"), "OK")
        self.assertIsNone(self.c.cmd("GET", "d1"))
        self.assertEqual(self.c.cmd("EXISTS", "d1"), 0)
        self.assertError(self.c.cmd("DEL", "d1"), "Key not found")
        self.assertError(self.c.cmd("DEL", "never-there"), "Key not found")
        self.assertError(self.c.cmd("DEL"), "Unexpected arguments")
        self.assertError(self.c.cmd("DEL", ""), "Invalid argument")
        # a deleted key can be written again
        self.assertEqual(self.c.cmd("SET", "d1", "again"), b"d1")
        self.assertEqual(self.c.cmd("GET", "d1"), b"again")

    def test_del_with_timestamp(self):
        self.c.cmd("SET", "dts", "v")
        self.assertEqual(self.c.cmd("DEL", "dts", "1600000000"), "OK")
        self.assertIsNone(self.c.cmd("GET", "dts"))

    def test_exists(self):
        self.assertEqual(self.c.cmd("EXISTS", "e"), 0)
        self.c.cmd("SET", "e", "v")
        self.assertEqual(self.c.cmd("EXISTS", "e"), 1)
        self.c.cmd("DEL", "e")
        self.assertEqual(self.c.cmd("EXISTS", "e"), 0)
        self.assertError(self.c.cmd("EXISTS"), "Unexpected arguments")
        self.assertError(self.c.cmd("EXISTS", "a", "b"), "Unexpected arguments")
        self.assertError(self.c.cmd("EXISTS", b"x" * 256), "Invalid key")

    def test_check(self):
        self.c.cmd("SET", "chk", "payload to verify")
        self.assertEqual(self.c.cmd("CHECK", "chk"), 1)
        self.assertIsNone(self.c.cmd("CHECK", "missing"))
        self.c.cmd("DEL", "chk")
        self.assertIsNone(self.c.cmd("CHECK", "chk"))
        self.assertError(self.c.cmd("CHECK"), "Unexpected arguments")

    def test_check_detects_corruption(self):
        payload = b"P" * 64
        self.c.cmd("SET", "corrupt", payload)
        self.assertEqual(self.c.cmd("CHECK", "corrupt"), 1)
        # flip one payload byte inside the data file (the only entry: header 28 +
        # entry header 18 + key 7); the server re-reads the payload for CHECK
        path = self.z.data_file(0)
        with open(path, "r+b") as f:
            data = f.read()
            pos = data.find(payload)
            self.assertGreater(pos, 0)
            f.seek(pos + 10)
            f.write(b"Q")
        self.assertEqual(self.c.cmd("CHECK", "corrupt"), 0)

    def test_length(self):
        self.c.cmd("SET", "len", "12345")
        self.assertEqual(self.c.cmd("LENGTH", "len"), 5)
        self.assertIsNone(self.c.cmd("LENGTH", "missing"))
        self.c.cmd("DEL", "len")
        self.assertIsNone(self.c.cmd("LENGTH", "len"))

    def test_keytime(self):
        before = int(time.time())
        self.c.cmd("SET", "kt", "v")
        after = int(time.time())
        t = self.c.cmd("KEYTIME", "kt")
        self.assertIsInstance(t, int)
        self.assertGreaterEqual(t, before - 1)
        self.assertLessEqual(t, after + 1)
        self.assertIsNone(self.c.cmd("KEYTIME", "missing"))

    def test_dbsize(self):
        self.assertEqual(self.c.cmd("DBSIZE"), 0)
        for i in range(3):
            self.c.cmd("SET", "k%d" % i, "v")
        self.assertEqual(self.c.cmd("DBSIZE"), 3)
        self.c.cmd("SET", "k0", "changed")
        self.assertEqual(self.c.cmd("DBSIZE"), 3)
        self.c.cmd("DEL", "k1")
        self.assertEqual(self.c.cmd("DBSIZE"), 2)

    def test_mget(self):
        self.c.cmd("SET", "ma", "va")
        self.c.cmd("SET", "mb", "vb")
        self.c.cmd("SET", "mc", "vc")
        self.c.cmd("DEL", "mc")
        self.assertEqual(self.c.cmd("MGET", "ma", "missing", "mb", "mc"), [b"va", None, b"vb", None])
        self.assertEqual(self.c.cmd("MGET", "ma", "ma"), [b"va", b"va"])
        self.assertError(self.c.cmd("MGET"), "Invalid arguments")
        self.assertError(self.c.cmd("MGET", "ma", b"x" * 256), "Invalid key")

    def test_mget_single_key(self):
        # 0-db refuses only a bare MGET (argc < 2); one key is a valid request
        self.c.cmd("SET", "one", "1")
        self.assertEqual(self.c.cmd("MGET", "one"), [b"1"])

    def test_wrong_argument_counts(self):
        for args in (["LENGTH"], ["KEYTIME"], ["CHECK", "a", "b"], ["LENGTH", "a", "b"],
                     ["KEYTIME", "a", "b"], ["GET", "a", "b", "c"]):
            self.assertError(self.c.cmd(*args), "Unexpected arguments")


class TestAuthDisabled(ZdbTestCase):
    def setUp(self):
        self.z = self.new_zdb()
        self.c = self.client(self.z)

    def test_auth_without_admin_password(self):
        self.assertError(self.c.cmd("AUTH", "whatever"), "Authentication disabled")

    def test_everyone_is_admin(self):
        self.assertEqual(self.c.cmd("NSNEW", "adm"), "OK")
        self.assertEqual(self.c.cmd("NSSET", "adm", "maxsize", "1000"), "OK")
        self.assertEqual(self.c.cmd("NSDEL", "adm"), "OK")


class TestAuthAdmin(ZdbTestCase):
    ADMIN = "s3cr3t-admin"

    def setUp(self):
        self.z = self.new_zdb("--admin", self.ADMIN)
        self.c = self.client(self.z)

    def test_auth_plain(self):
        self.assertError(self.c.cmd("AUTH", "wrong"), "Access denied")
        self.assertEqual(self.c.cmd("AUTH", self.ADMIN), "OK")
        self.assertEqual(self.c.cmd("NSNEW", "after-auth"), "OK")

    def test_auth_argument_count(self):
        self.assertError(self.c.cmd("AUTH"), "Unexpected arguments")
        self.assertError(self.c.cmd("AUTH", "a", "b", "c"), "Unexpected arguments")

    def test_auth_password_too_long(self):
        self.assertError(self.c.cmd("AUTH", "p" * 129), "Password too long")

    def test_auth_prefix_of_password_denied(self):
        self.assertError(self.c.cmd("AUTH", self.ADMIN[:-1]), "Access denied")
        self.assertError(self.c.cmd("AUTH", self.ADMIN + "x"), "Access denied")

    def test_admin_commands_denied_without_auth(self):
        self.c.cmd("SET", "tk", "v")  # data commands stay open on the default ns
        denied = [
            ["NSNEW", "x"],
            ["NSDEL", "x"],
            ["NSSET", "default", "lock", "1"],
            ["SET", "tk", "v2", "1600000000"],
            ["DEL", "tk", "1600000000"],
        ]
        for args in denied:
            self.assertError(self.c.cmd(*args), "Permission denied")
        # nothing changed
        self.assertEqual(self.c.cmd("GET", "tk"), b"v")
        self.assertEqual(self.c.cmd("NSLIST"), [b"default"])

    def test_unauthorized_counter(self):
        info = zdbtest.info_dict(self.c.cmd("INFO"))
        before = int(info["commands_unauthorized"])
        self.c.cmd("NSNEW", "nope")
        info = zdbtest.info_dict(self.c.cmd("INFO"))
        self.assertGreaterEqual(int(info["commands_unauthorized"]), before + 1)

    def test_non_admin_can_use_data_commands(self):
        self.assertEqual(self.c.cmd("PING"), "PONG")
        self.assertEqual(self.c.cmd("SET", "user", "data"), b"user")
        self.assertEqual(self.c.cmd("GET", "user"), b"data")
        self.assertEqual(self.c.cmd("DEL", "user"), "OK")
        self.assertEqual(self.c.cmd("NSLIST"), [b"default"])
        self.assertIsInstance(self.c.cmd("NSINFO", "default"), bytes)

    def test_auth_is_per_connection(self):
        self.assertEqual(self.c.cmd("AUTH", self.ADMIN), "OK")
        other = self.client(self.z)
        self.assertError(other.cmd("NSNEW", "x"), "Permission denied")
        self.assertEqual(self.c.cmd("NSNEW", "x"), "OK")

    def test_timestamp_forms_after_auth(self):
        self.assertEqual(self.c.cmd("AUTH", self.ADMIN), "OK")
        self.assertEqual(self.c.cmd("SET", "ts", "v", "1500000000"), b"ts")
        self.assertEqual(self.c.cmd("KEYTIME", "ts"), 1500000000)
        self.assertEqual(self.c.cmd("DEL", "ts", "1500000001"), "OK")
        self.assertIsNone(self.c.cmd("GET", "ts"))


if __name__ == "__main__":
    zdbtest.main()
