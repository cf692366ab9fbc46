#!/usr/bin/env python3
"""zdb integration tests: namespaces (spec sections 3, 4 and 4.1)."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zdbtest  # noqa: E402
from zdbtest import ZdbTestCase  # noqa: E402

# spec 4.1, in this order; space_available only with a limit; the last six for admins
NSINFO_KEYS = ["name", "entries", "public", "worm", "locked", "password",
               "data_size_bytes", "data_size_mb", "data_limits_bytes", "index_size_bytes",
               "index_size_kb", "next_internal_id", "mode",
               "stats_index_io_errors", "stats_index_io_error_last", "stats_index_faults",
               "stats_data_io_errors", "stats_data_io_error_last", "stats_data_faults"]
NSINFO_DISK_KEYS = ["index_disk_freespace_bytes", "index_disk_freespace_mb",
                    "data_disk_freespace_bytes", "data_disk_freespace_mb"]
NSINFO_ADMIN_KEYS = ["data_path", "data_active", "index_path", "index_active",
                     "data_current_id", "data_current_offset"]

ERR_FROZEN = "Namespace is temporarily frozen (read-write disabled)"
ERR_LOCKED = "Namespace is temporarily locked (read-only)"
ERR_READONLY = "Namespace is in read-only mode"
ERR_WORM_SET = "Namespace is protected by worm mode"
ERR_WORM_DEL = "Cannot delete a key when namespace is in worm mode"
ERR_FULL = "No space left on this namespace"


def bswap64(n):
    return int.from_bytes(int(n).to_bytes(8, "little"), "big")


def norm(path):
    return os.path.normpath(os.path.realpath(path))


class NsTestCase(ZdbTestCase):
    def nsinfo(self, c, ns):
        r = c.cmd("NSINFO", ns)
        self.assertIsInstance(r, bytes, "NSINFO %s: %r" % (ns, r))
        text = r.decode()
        lines = [line for line in text.split("\n") if line.strip()]
        self.assertEqual(lines[0].strip(), "# namespace")
        pairs = []
        for line in lines[1:]:
            self.assertRegex(line, r"^[a-z_]+: ", "bad NSINFO line %r" % line)
            k, _, v = line.partition(": ")
            pairs.append((k, v.rstrip("\r")))
        return pairs

    def nsinfo_dict(self, c, ns):
        return dict(self.nsinfo(c, ns))


class TestNamespaceCommands(NsTestCase):
    def setUp(self):
        self.z = self.new_zdb()
        self.c = self.client(self.z)

    def test_default_exists(self):
        self.assertEqual(self.c.cmd("NSLIST"), [b"default"])
        self.assertEqual(self.c.cmd("SELECT", "default"), "OK")

    def test_nsnew_and_nslist(self):
        self.assertEqual(self.c.cmd("NSNEW", "alpha"), "OK")
        self.assertEqual(self.c.cmd("NSNEW", "beta"), "OK")
        names = self.c.cmd("NSLIST")
        self.assertIsInstance(names, list)
        self.assertEqual(sorted(names), [b"alpha", b"beta", b"default"])
        self.assertTrue(os.path.isdir(self.z.ns_index_dir("alpha")))
        self.assertTrue(os.path.isdir(self.z.ns_data_dir("alpha")))
        self.assertTrue(os.path.isfile(os.path.join(self.z.ns_index_dir("alpha"), "zdb-namespace")))

    def test_nsnew_errors(self):
        self.assertEqual(self.c.cmd("NSNEW", "dup"), "OK")
        self.assertError(self.c.cmd("NSNEW", "dup"), "This namespace is not available")
        for bad in (".", "..", "a/b", "/abs", "default"):
            self.assertError(self.c.cmd("NSNEW", bad), "This name is not allowed")
        self.assertError(self.c.cmd("NSNEW", "n" * 129), "Namespace too long")
        self.assertEqual(self.c.cmd("NSNEW", "n" * 128), "OK")
        self.assertError(self.c.cmd("NSNEW"), "Unexpected arguments")
        self.assertError(self.c.cmd("NSNEW", "a", "b"), "Unexpected arguments")
        self.assertError(self.c.cmd("NSNEW", ""), "Invalid argument")
        self.assertEqual(sorted(self.c.cmd("NSLIST")), [b"default", b"dup", b"n" * 128])

    def test_nsdel(self):
        self.assertError(self.c.cmd("NSDEL", "default"), "Cannot remove default namespace")
        self.assertError(self.c.cmd("NSDEL", "ghost"), "This namespace doesn't exists")
        self.c.cmd("NSNEW", "gone")
        self.assertEqual(self.c.cmd("SELECT", "gone"), "OK")
        self.c.cmd("SET", "k", "v")
        self.assertError(self.c.cmd("NSDEL", "gone"), "Cannot remove namespace you're currently using.")
        self.assertEqual(self.c.cmd("SELECT", "default"), "OK")
        self.assertEqual(self.c.cmd("NSDEL", "gone"), "OK")
        self.assertEqual(self.c.cmd("NSLIST"), [b"default"])
        self.assertError(self.c.cmd("SELECT", "gone"), "Namespace not found")
        self.assertError(self.c.cmd("NSINFO", "gone"), "Namespace not found")
        self.assertFalse(os.path.exists(self.z.ns_index_dir("gone")))
        self.assertFalse(os.path.exists(self.z.ns_data_dir("gone")))
        # the name is free again and the new namespace starts empty
        self.assertEqual(self.c.cmd("NSNEW", "gone"), "OK")
        self.assertEqual(self.c.cmd("SELECT", "gone"), "OK")
        self.assertIsNone(self.c.cmd("GET", "k"))
        self.assertEqual(self.c.cmd("DBSIZE"), 0)

    def test_nsdel_disconnects_other_users(self):
        self.c.cmd("NSNEW", "shared")
        other = self.client(self.z)
        self.assertEqual(other.cmd("SELECT", "shared"), "OK")
        self.assertEqual(other.cmd("SET", "k", "v"), b"k")
        bystander = self.client(self.z)
        self.assertEqual(self.c.cmd("NSDEL", "shared"), "OK")
        r = other.cmd("PING")
        self.assertError(r, "Your active namespace is not available anymore (probably removed).")
        self.assertTrue(other.is_closed(), "client of a deleted namespace was not disconnected")
        # everyone else is unaffected
        self.assertEqual(bystander.cmd("PING"), "PONG")
        self.assertEqual(self.c.cmd("PING"), "PONG")

    def test_nsinfo_fresh_default(self):
        pairs = self.nsinfo(self.c, "default")
        keys = [k for k, _ in pairs]
        self.assertEqual(keys, NSINFO_KEYS + NSINFO_DISK_KEYS + NSINFO_ADMIN_KEYS)
        info = dict(pairs)
        self.assertEqual(info["name"], "default")
        self.assertEqual(info["entries"], "0")
        self.assertEqual(info["public"], "yes")
        self.assertEqual(info["worm"], "no")
        self.assertEqual(info["locked"], "no")
        self.assertEqual(info["password"], "no")
        self.assertEqual(info["data_size_bytes"], "0")
        self.assertEqual(info["data_size_mb"], "0.00")
        self.assertEqual(info["data_limits_bytes"], "0")
        self.assertRegex(info["index_size_bytes"], r"^[0-9]+$")
        self.assertRegex(info["index_size_kb"], r"^[0-9]+\.[0-9]{2}$")
        self.assertEqual(info["next_internal_id"], "0x00000000")
        self.assertEqual(info["mode"], "userkey")
        for k in ("stats_index_io_errors", "stats_index_io_error_last", "stats_index_faults",
                  "stats_data_io_errors", "stats_data_io_error_last", "stats_data_faults"):
            self.assertEqual(info[k], "0", k)
        for k in NSINFO_DISK_KEYS:
            if k.endswith("_mb"):
                self.assertRegex(info[k], r"^[0-9]+\.[0-9]{2}$", k)
            else:
                self.assertRegex(info[k], r"^[0-9]+$", k)
        self.assertEqual(norm(info["data_path"]), norm(self.z.ns_data_dir("default")))
        self.assertEqual(norm(info["index_path"]), norm(self.z.ns_index_dir("default")))
        self.assertTrue(info["data_active"].endswith("d0"), info["data_active"])
        self.assertTrue(info["index_active"].endswith("i0"), info["index_active"])
        self.assertEqual(info["data_current_id"], "0")
        self.assertRegex(info["data_current_offset"], r"^[0-9]+$")

    def test_nsinfo_counts(self):
        self.c.cmd("NSNEW", "cnt")
        self.c.cmd("SELECT", "cnt")
        self.c.cmd("SET", "a", "x" * 1000)
        self.c.cmd("SET", "b", "y" * 500)
        self.c.cmd("SET", "c", "z" * 250)
        self.c.cmd("SET", "a", "x" * 100)  # overwrite: 1000 -> 100
        self.c.cmd("DEL", "c")
        info = self.nsinfo_dict(self.c, "cnt")
        self.assertEqual(info["name"], "cnt")
        self.assertEqual(info["entries"], "2")
        self.assertEqual(info["data_size_bytes"], "600")
        self.assertEqual(info["data_size_mb"], "%.2f" % (600 / 1048576))
        self.assertRegex(info["next_internal_id"], r"^0x[0-9a-f]{8,16}$")
        self.assertEqual(int(info["data_current_offset"]), os.path.getsize(self.z.data_file(0, "cnt")))

    def test_nsinfo_errors(self):
        self.assertError(self.c.cmd("NSINFO", "nope"), "Namespace not found")
        self.assertError(self.c.cmd("NSINFO"), "Unexpected arguments")
        self.assertError(self.c.cmd("NSINFO", "n" * 129), "Namespace too long")

    def test_nsinfo_space_available(self):
        self.c.cmd("NSNEW", "lim")
        self.assertEqual(self.c.cmd("NSSET", "lim", "maxsize", "1000"), "OK")
        self.c.cmd("SELECT", "lim")
        self.c.cmd("SET", "k", "v" * 100)
        pairs = self.nsinfo(self.c, "lim")
        keys = [k for k, _ in pairs]
        self.assertEqual(keys, NSINFO_KEYS + ["space_available"] + NSINFO_DISK_KEYS + NSINFO_ADMIN_KEYS)
        info = dict(pairs)
        self.assertEqual(info["data_limits_bytes"], "1000")
        self.assertEqual(info["space_available"], "900")

    def test_nsset_properties_show_in_nsinfo(self):
        self.c.cmd("NSNEW", "props")
        info = self.nsinfo_dict(self.c, "props")
        self.assertEqual((info["public"], info["worm"], info["locked"], info["password"]), ("yes", "no", "no", "no"))
        self.assertEqual(self.c.cmd("NSSET", "props", "maxsize", "4096"), "OK")
        self.assertEqual(self.c.cmd("NSSET", "props", "password", "pw"), "OK")
        self.assertEqual(self.c.cmd("NSSET", "props", "public", "0"), "OK")
        self.assertEqual(self.c.cmd("NSSET", "props", "worm", "1"), "OK")
        self.assertEqual(self.c.cmd("NSSET", "props", "lock", "1"), "OK")
        info = self.nsinfo_dict(self.c, "props")
        self.assertEqual(info["data_limits_bytes"], "4096")
        self.assertEqual(info["password"], "yes")
        self.assertEqual(info["public"], "no")
        self.assertEqual(info["worm"], "yes")
        self.assertEqual(info["locked"], "yes")
        self.assertEqual(self.c.cmd("NSSET", "props", "password", "*"), "OK")
        self.assertEqual(self.c.cmd("NSSET", "props", "public", "1"), "OK")
        self.assertEqual(self.c.cmd("NSSET", "props", "worm", "0"), "OK")
        self.assertEqual(self.c.cmd("NSSET", "props", "lock", "0"), "OK")
        self.assertEqual(self.c.cmd("NSSET", "props", "maxsize", "0"), "OK")
        info = self.nsinfo_dict(self.c, "props")
        self.assertEqual((info["public"], info["worm"], info["locked"], info["password"]), ("yes", "no", "no", "no"))
        self.assertEqual(info["data_limits_bytes"], "0")
        self.assertNotIn("space_available", info)
        self.assertEqual(self.c.cmd("NSSET", "props", "freeze", "1"), "OK")
        self.assertEqual(self.c.cmd("NSSET", "props", "freeze", "0"), "OK")
        self.assertEqual(self.c.cmd("NSSET", "props", "mode", "seq"), "OK")
        self.assertEqual(self.nsinfo_dict(self.c, "props")["mode"], "sequential")
        self.assertEqual(self.c.cmd("NSSET", "props", "mode", "user"), "OK")
        self.assertEqual(self.nsinfo_dict(self.c, "props")["mode"], "userkey")

    def test_nsset_errors(self):
        self.c.cmd("NSNEW", "e")
        self.assertError(self.c.cmd("NSSET", "e", "colour", "blue"), "Invalid property")
        self.assertError(self.c.cmd("NSSET", "e", "password", "p" * 64), "Argument too long")
        self.assertEqual(self.c.cmd("NSSET", "e", "password", "p" * 63), "OK")
        self.assertError(self.c.cmd("NSSET", "e", "maxsize"), "Unexpected arguments")
        self.assertError(self.c.cmd("NSSET", "e", "maxsize", "1", "2"), "Unexpected arguments")
        self.assertError(self.c.cmd("NSSET", "nope", "maxsize", "1"), "Namespace not found")
        self.assertError(self.c.cmd("NSSET", "e", "mode", "fast"), "Invalid property value (expected: user, seq)")
        self.c.cmd("SELECT", "e", "p" * 63)
        self.c.cmd("SET", "used", "v")
        self.assertError(self.c.cmd("NSSET", "e", "mode", "seq"), "Cannot change mode of used namespace")

    def test_nsset_default(self):
        for prop, value in (("maxsize", "10"), ("password", "x"), ("public", "0"), ("worm", "1")):
            self.assertError(self.c.cmd("NSSET", "default", prop, value), "Cannot update default namespace")
        info = self.nsinfo_dict(self.c, "default")
        self.assertEqual((info["public"], info["worm"], info["password"], info["data_limits_bytes"]),
                         ("yes", "no", "no", "0"))
        # lock, freeze and mode are allowed on default; issue them from another namespace
        self.c.cmd("NSNEW", "side")
        self.c.cmd("SELECT", "side")
        user = self.client(self.z)
        self.assertEqual(self.c.cmd("NSSET", "default", "lock", "1"), "OK")
        self.assertError(user.cmd("SET", "k", "v"), ERR_LOCKED)
        self.assertEqual(self.c.cmd("NSSET", "default", "lock", "0"), "OK")
        self.assertEqual(self.c.cmd("NSSET", "default", "freeze", "1"), "OK")
        self.assertError(user.cmd("GET", "k"), ERR_FROZEN)
        self.assertEqual(self.c.cmd("NSSET", "default", "freeze", "0"), "OK")
        self.assertEqual(self.c.cmd("NSSET", "default", "mode", "seq"), "OK")
        self.assertEqual(self.nsinfo_dict(self.c, "default")["mode"], "sequential")
        self.assertEqual(self.c.cmd("NSSET", "default", "mode", "user"), "OK")
        self.assertEqual(user.cmd("SET", "k", "v"), b"k")

    def test_select_errors(self):
        self.assertError(self.c.cmd("SELECT", "nope"), "Namespace not found")
        self.assertIsError(self.c.cmd("SELECT"))
        self.c.cmd("NSNEW", "pw")
        self.c.cmd("NSSET", "pw", "password", "secret")
        self.assertError(self.c.cmd("SELECT", "pw", "wrong"), "Access denied")
        self.assertError(self.c.cmd("SELECT", "pw", "s" * 300), "Password too long")
        self.assertError(self.c.cmd("SELECT", "pw", "PLAIN", "secret"), "Only SECURE extra method supported")

    def test_namespaces_are_isolated(self):
        self.c.cmd("NSNEW", "one")
        self.c.cmd("NSNEW", "two")
        self.c.cmd("SET", "k", "in-default")
        self.c.cmd("SELECT", "one")
        self.assertIsNone(self.c.cmd("GET", "k"))
        self.c.cmd("SET", "k", "in-one")
        self.c.cmd("SET", "only-one", "x")
        self.c.cmd("SELECT", "two")
        self.assertIsNone(self.c.cmd("GET", "k"))
        self.c.cmd("SET", "k", "in-two")
        self.assertEqual(self.c.cmd("DBSIZE"), 1)
        self.c.cmd("SELECT", "one")
        self.assertEqual(self.c.cmd("GET", "k"), b"in-one")
        self.assertEqual(self.c.cmd("DBSIZE"), 2)
        self.c.cmd("SELECT", "default")
        self.assertEqual(self.c.cmd("GET", "k"), b"in-default")
        self.assertEqual(self.c.cmd("DBSIZE"), 1)
        # the selection is per connection
        other = self.client(self.z)
        self.assertEqual(other.cmd("GET", "k"), b"in-default")


class TestNamespaceAccess(NsTestCase):
    def setUp(self):
        self.z = self.new_zdb()
        self.admin = self.client(self.z)
        self.admin.cmd("NSNEW", "ns")
        self.admin.cmd("SELECT", "ns")
        self.admin.cmd("SET", "existing", "value")
        self.admin.cmd("SELECT", "default")
        self.user = self.client(self.z)

    def test_public_with_password_is_read_only_without_it(self):
        self.admin.cmd("NSSET", "ns", "password", "secret")
        self.assertEqual(self.user.cmd("SELECT", "ns"), "OK")
        self.assertEqual(self.user.cmd("GET", "existing"), b"value")
        self.assertEqual(self.user.cmd("EXISTS", "existing"), 1)
        self.assertError(self.user.cmd("SET", "new", "v"), ERR_READONLY)
        self.assertError(self.user.cmd("DEL", "existing"), ERR_READONLY)
        self.assertError(self.user.cmd("DEL", "missing"), ERR_READONLY)
        self.assertEqual(self.user.cmd("SELECT", "ns", "secret"), "OK")
        self.assertEqual(self.user.cmd("SET", "new", "v"), b"new")
        self.assertEqual(self.user.cmd("DEL", "existing"), "OK")

    def test_private_with_password_refuses_without_it(self):
        self.admin.cmd("NSSET", "ns", "password", "secret")
        self.admin.cmd("NSSET", "ns", "public", "0")
        self.assertError(self.user.cmd("SELECT", "ns"), "Namespace protected and private")
        self.assertError(self.user.cmd("SELECT", "ns", "bad"), "Access denied")
        # still in default after the failed selects
        self.assertIsNone(self.user.cmd("GET", "existing"))
        self.assertEqual(self.user.cmd("SELECT", "ns", "secret"), "OK")
        self.assertEqual(self.user.cmd("GET", "existing"), b"value")
        self.assertEqual(self.user.cmd("SET", "w", "v"), b"w")

    def test_password_cleared(self):
        self.admin.cmd("NSSET", "ns", "password", "secret")
        self.admin.cmd("NSSET", "ns", "public", "0")
        self.admin.cmd("NSSET", "ns", "password", "*")
        self.assertEqual(self.user.cmd("SELECT", "ns"), "OK")
        self.assertEqual(self.user.cmd("SET", "w", "v"), b"w")

    def test_worm(self):
        self.assertEqual(self.admin.cmd("NSSET", "ns", "worm", "1"), "OK")
        self.user.cmd("SELECT", "ns")
        self.assertEqual(self.user.cmd("SET", "fresh", "v1"), b"fresh")
        self.assertError(self.user.cmd("SET", "fresh", "v2"), ERR_WORM_SET)
        self.assertError(self.user.cmd("SET", "existing", "other"), ERR_WORM_SET)
        self.assertError(self.user.cmd("DEL", "existing"), ERR_WORM_DEL)
        self.assertError(self.user.cmd("DEL", "missing"), "Key not found")
        self.assertEqual(self.user.cmd("GET", "fresh"), b"v1")
        self.assertEqual(self.user.cmd("GET", "existing"), b"value")
        self.assertEqual(self.admin.cmd("NSSET", "ns", "worm", "0"), "OK")
        self.assertEqual(self.user.cmd("SET", "fresh", "v2"), b"fresh")
        self.assertEqual(self.user.cmd("DEL", "existing"), "OK")

    def test_maxsize(self):
        self.admin.cmd("SELECT", "ns")
        self.admin.cmd("DEL", "existing")
        self.admin.cmd("SELECT", "default")
        self.assertEqual(self.admin.cmd("NSSET", "ns", "maxsize", "100"), "OK")
        u = self.user
        u.cmd("SELECT", "ns")
        self.assertEqual(u.cmd("SET", "a", b"a" * 60), b"a")
        self.assertError(u.cmd("SET", "b", b"b" * 41), ERR_FULL)
        self.assertIsNone(u.cmd("GET", "b"))
        self.assertEqual(u.cmd("SET", "b", b"b" * 40), b"b")  # exactly at the limit
        # an overwrite frees the old length first
        self.assertEqual(u.cmd("SET", "a", b"A" * 55), b"a")
        self.assertEqual(u.cmd("SET", "a", b"a" * 60), b"a")
        self.assertError(u.cmd("SET", "a", b"x" * 61), ERR_FULL)
        self.assertEqual(u.cmd("GET", "a"), b"a" * 60)
        # a delete frees its length
        self.assertEqual(u.cmd("DEL", "b"), "OK")
        self.assertEqual(u.cmd("SET", "c", b"c" * 40), b"c")
        info = self.nsinfo_dict(self.admin, "ns")
        self.assertEqual(info["data_size_bytes"], "100")
        self.assertEqual(info["space_available"], "0")

    def test_lock(self):
        self.user.cmd("SELECT", "ns")
        self.assertEqual(self.admin.cmd("NSSET", "ns", "lock", "1"), "OK")
        self.assertEqual(self.user.cmd("GET", "existing"), b"value")
        self.assertEqual(self.user.cmd("EXISTS", "existing"), 1)
        self.assertError(self.user.cmd("SET", "k", "v"), ERR_LOCKED)
        self.assertError(self.user.cmd("SET", "existing", "v2"), ERR_LOCKED)
        self.assertError(self.user.cmd("DEL", "existing"), ERR_LOCKED)
        self.assertEqual(self.nsinfo_dict(self.admin, "ns")["locked"], "yes")
        self.assertEqual(self.admin.cmd("NSSET", "ns", "lock", "0"), "OK")
        self.assertEqual(self.user.cmd("SET", "k", "v"), b"k")
        self.assertEqual(self.user.cmd("DEL", "existing"), "OK")

    def test_freeze(self):
        self.user.cmd("SELECT", "ns")
        self.assertEqual(self.admin.cmd("NSSET", "ns", "freeze", "1"), "OK")
        self.assertError(self.user.cmd("GET", "existing"), ERR_FROZEN)
        self.assertError(self.user.cmd("EXISTS", "existing"), ERR_FROZEN)
        self.assertError(self.user.cmd("SET", "k", "v"), ERR_FROZEN)
        self.assertError(self.user.cmd("DEL", "existing"), ERR_FROZEN)
        self.assertEqual(self.admin.cmd("NSSET", "ns", "freeze", "0"), "OK")
        self.assertEqual(self.user.cmd("GET", "existing"), b"value")
        self.assertEqual(self.user.cmd("SET", "k", "v"), b"k")


class TestNamespaceAdmin(NsTestCase):
    ADMIN = "adminpw"

    def setUp(self):
        self.z = self.new_zdb("--admin", self.ADMIN)
        self.c = self.client(self.z)

    def test_nsinfo_admin_fields(self):
        pairs = self.nsinfo(self.c, "default")
        keys = [k for k, _ in pairs]
        self.assertEqual(keys, NSINFO_KEYS + NSINFO_DISK_KEYS)
        self.assertEqual(self.c.cmd("AUTH", self.ADMIN), "OK")
        keys = [k for k, _ in self.nsinfo(self.c, "default")]
        self.assertEqual(keys, NSINFO_KEYS + NSINFO_DISK_KEYS + NSINFO_ADMIN_KEYS)

    def test_namespace_admin_commands(self):
        self.assertError(self.c.cmd("NSNEW", "x"), "Permission denied")
        self.c.cmd("AUTH", self.ADMIN)
        self.assertEqual(self.c.cmd("NSNEW", "x"), "OK")
        other = self.client(self.z)
        self.assertError(other.cmd("NSSET", "x", "worm", "1"), "Permission denied")
        self.assertError(other.cmd("NSDEL", "x"), "Permission denied")
        self.assertEqual(other.cmd("SELECT", "x"), "OK")
        self.assertEqual(other.cmd("SET", "k", "v"), b"k")
        self.assertEqual(sorted(other.cmd("NSLIST")), [b"default", b"x"])


class TestProtect(NsTestCase):
    ADMIN = "protectpw"

    def test_protect_makes_default_read_only(self):
        z = self.new_zdb("--admin", self.ADMIN, "--protect")
        c = self.client(z)
        self.assertError(c.cmd("SET", "k", "v"), ERR_READONLY)
        self.assertIsNone(c.cmd("GET", "k"))
        self.assertEqual(self.nsinfo_dict(c, "default")["password"], "yes")
        # AUTH makes the client admin, but writing needs SELECT default <adminpass>
        self.assertEqual(c.cmd("AUTH", self.ADMIN), "OK")
        self.assertError(c.cmd("SET", "k", "v"), ERR_READONLY)
        self.assertError(c.cmd("SELECT", "default", "wrong"), "Access denied")
        self.assertEqual(c.cmd("SELECT", "default", self.ADMIN), "OK")
        self.assertEqual(c.cmd("SET", "k", "v"), b"k")
        other = self.client(z)
        self.assertEqual(other.cmd("GET", "k"), b"v")
        self.assertError(other.cmd("SET", "k2", "v"), ERR_READONLY)


class TestNamespaceRestartCases(NsTestCase):
    def test_recreated_namespace_is_empty_after_restart(self):
        z = self.new_zdb()
        c = z.client()
        c.cmd("NSNEW", "again")
        c.cmd("SELECT", "again")
        c.cmd("SET", "old", "data")
        c.cmd("SELECT", "default")
        self.assertEqual(c.cmd("NSDEL", "again"), "OK")
        self.assertEqual(c.cmd("NSNEW", "again"), "OK")
        c.close()
        z.restart()
        c = self.client(z)
        c.cmd("SELECT", "again")
        self.assertIsNone(c.cmd("GET", "old"))
        self.assertEqual(c.cmd("DBSIZE"), 0)

    def test_many_namespaces(self):
        z = self.new_zdb()
        c = z.client()
        names = ["ns%02d" % i for i in range(40)]
        for n in names:
            self.assertEqual(c.cmd("NSNEW", n), "OK")
            c.cmd("SELECT", n)
            c.cmd("SET", "who", n)
            c.cmd("SELECT", "default")
        c.close()
        z.restart()
        c = self.client(z)
        self.assertEqual(sorted(c.cmd("NSLIST")), sorted([n.encode() for n in names] + [b"default"]))
        for n in names:
            self.assertEqual(c.cmd("SELECT", n), "OK")
            self.assertEqual(c.cmd("GET", "who"), n.encode())


class TestMaxsizeFlag(NsTestCase):
    def test_maxsize_flag_limits_default(self):
        z = self.new_zdb("--maxsize", "100")
        c = self.client(z)
        self.assertEqual(self.nsinfo_dict(c, "default")["data_limits_bytes"], "100")
        self.assertEqual(c.cmd("SET", "a", b"a" * 100), b"a")
        self.assertError(c.cmd("SET", "b", b"b"), ERR_FULL)


class TestNamespacePersistence(NsTestCase):
    def test_namespaces_survive_restart(self):
        z = self.new_zdb()
        c = z.client()
        c.cmd("NSNEW", "keep")
        c.cmd("NSNEW", "plain")
        c.cmd("NSNEW", "dropped")
        c.cmd("NSSET", "keep", "password", "pw")
        c.cmd("NSSET", "keep", "public", "0")
        c.cmd("NSSET", "keep", "maxsize", "5000")
        c.cmd("NSSET", "keep", "worm", "1")
        c.cmd("SELECT", "keep", "pw")
        c.cmd("SET", "k1", "v1")
        c.cmd("SET", "k2", "v2")
        c.cmd("SELECT", "plain")
        c.cmd("SET", "p", "plain-value")
        c.cmd("SELECT", "default")
        c.cmd("NSDEL", "dropped")
        # lock and freeze are runtime only
        c.cmd("NSSET", "plain", "lock", "1")
        c.close()
        z.restart()
        c = self.client(z)
        self.assertEqual(sorted(c.cmd("NSLIST")), [b"default", b"keep", b"plain"])
        info = self.nsinfo_dict(c, "keep")
        self.assertEqual(info["password"], "yes")
        self.assertEqual(info["public"], "no")
        self.assertEqual(info["worm"], "yes")
        self.assertEqual(info["data_limits_bytes"], "5000")
        self.assertEqual(info["entries"], "2")
        self.assertEqual(info["data_size_bytes"], "4")
        self.assertError(c.cmd("SELECT", "keep"), "Namespace protected and private")
        self.assertEqual(c.cmd("SELECT", "keep", "pw"), "OK")
        self.assertEqual(c.cmd("GET", "k1"), b"v1")
        self.assertEqual(c.cmd("GET", "k2"), b"v2")
        self.assertError(c.cmd("SET", "k1", "other"), ERR_WORM_SET)
        self.assertEqual(self.nsinfo_dict(c, "plain")["locked"], "no")
        self.assertEqual(c.cmd("SELECT", "plain"), "OK")
        self.assertEqual(c.cmd("GET", "p"), b"plain-value")
        self.assertEqual(c.cmd("SET", "p2", "writable again"), b"p2")


if __name__ == "__main__":
    zdbtest.main()
