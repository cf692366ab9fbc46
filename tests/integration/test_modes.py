#!/usr/bin/env python3
"""zdb integration tests: user, sequential and mixed modes (spec section 3), and the
start-up refusals of spec section 7."""

import fcntl
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zdbtest  # noqa: E402
from zdbtest import ZdbTestCase, le64  # noqa: E402

ERR_ONLY_UPDATE = "Invalid key, only update authorized"


def nsinfo(c, ns):
    return zdbtest.info_dict(c.cmd("NSINFO", ns))


class TestSequential(ZdbTestCase):
    def setUp(self):
        self.z = self.new_zdb("--mode", "seq")
        self.c = self.client(self.z)

    def test_ids_from_zero(self):
        for i in range(5):
            r = self.c.cmd("SET", "", "value-%d" % i)
            self.assertEqual(r, le64(i), "SET #%d" % i)
            self.assertEqual(len(r), 8)
        for i in range(5):
            self.assertEqual(self.c.cmd("GET", le64(i)), b"value-%d" % i)
        self.assertEqual(self.c.cmd("DBSIZE"), 5)
        info = nsinfo(self.c, "default")
        self.assertEqual(info["mode"], "sequential")
        self.assertEqual(info["entries"], "5")
        self.assertEqual(info["next_internal_id"], "0x%08x" % int.from_bytes(le64(5), "big"))

    def test_update_existing_id(self):
        self.c.cmd("SET", "", "first")
        self.c.cmd("SET", "", "second")
        self.assertEqual(self.c.cmd("SET", le64(0), "first, updated"), le64(0))
        self.assertEqual(self.c.cmd("GET", le64(0)), b"first, updated")
        self.assertEqual(self.c.cmd("GET", le64(1)), b"second")
        self.assertIsNone(self.c.cmd("SET", le64(1), "second"))  # identical -> nil
        self.assertEqual(self.c.cmd("DBSIZE"), 2)
        self.assertEqual(self.c.cmd("LENGTH", le64(0)), len("first, updated"))

    def test_update_consumes_an_id_like_0db(self):
        # 0-db appends a deleted copy of the old entry on update, which takes the
        # next position in the index: the next new id skips it
        self.assertEqual(self.c.cmd("SET", "", "a"), le64(0))
        self.assertEqual(self.c.cmd("SET", "", "b"), le64(1))
        self.assertEqual(self.c.cmd("SET", le64(0), "a2"), le64(0))
        self.assertEqual(self.c.cmd("SET", "", "c"), le64(3))
        self.assertIsNone(self.c.cmd("GET", le64(2)))
        self.assertEqual(self.c.cmd("GET", le64(0)), b"a2")
        self.assertEqual(self.c.cmd("GET", le64(3)), b"c")

    def test_other_keys_refused(self):
        self.c.cmd("SET", "", "x")
        self.assertError(self.c.cmd("SET", le64(1), "v"), ERR_ONLY_UPDATE)
        self.assertError(self.c.cmd("SET", le64(1000), "v"), ERR_ONLY_UPDATE)
        self.assertError(self.c.cmd("SET", "userkey", "v"), ERR_ONLY_UPDATE)
        self.assertError(self.c.cmd("SET", b"\x00" * 4, "v"), ERR_ONLY_UPDATE)
        self.assertEqual(self.c.cmd("DBSIZE"), 1)
        self.assertEqual(self.c.cmd("SET", "", "y"), le64(1))

    def test_get_odd_keys(self):
        self.c.cmd("SET", "", "x")
        self.assertIsNone(self.c.cmd("GET", "abc"))
        self.assertIsNone(self.c.cmd("GET", b"\x00" * 4))
        self.assertIsNone(self.c.cmd("GET", b"\x00" * 9))
        self.assertIsNone(self.c.cmd("GET", le64(1)))
        self.assertIsNone(self.c.cmd("GET", le64(10 ** 6)))
        self.assertIsNone(self.c.cmd("GET", b"\xff" * 8))
        self.assertEqual(self.c.cmd("EXISTS", le64(0)), 1)
        self.assertEqual(self.c.cmd("EXISTS", le64(1)), 0)
        self.assertIsNone(self.c.cmd("LENGTH", le64(5)))

    def test_delete(self):
        for i in range(3):
            self.c.cmd("SET", "", "v%d" % i)
        self.assertEqual(self.c.cmd("DEL", le64(1)), "OK")
        self.assertIsNone(self.c.cmd("GET", le64(1)))
        self.assertEqual(self.c.cmd("EXISTS", le64(1)), 0)
        self.assertError(self.c.cmd("DEL", le64(1)), "Key not found")
        self.assertError(self.c.cmd("DEL", le64(9)), "Key not found")
        self.assertEqual(self.c.cmd("GET", le64(2)), b"v2")
        self.assertEqual(self.c.cmd("DBSIZE"), 2)
        # ids are never reused
        self.assertEqual(self.c.cmd("SET", "", "v3"), le64(3))

    def test_restart_keeps_ids(self):
        for i in range(4):
            self.c.cmd("SET", "", b"payload-%d" % i)
        self.c.cmd("DEL", le64(2))
        self.c.close()
        self.z.restart()
        c = self.client(self.z)
        self.assertEqual(c.cmd("GET", le64(0)), b"payload-0")
        self.assertEqual(c.cmd("GET", le64(3)), b"payload-3")
        self.assertIsNone(c.cmd("GET", le64(2)))
        self.assertEqual(c.cmd("DBSIZE"), 3)
        self.assertEqual(c.cmd("SET", "", "after"), le64(4))
        self.assertEqual(c.cmd("SET", le64(1), "updated"), le64(1))
        self.assertEqual(c.cmd("GET", le64(1)), b"updated")

    def test_new_namespaces_are_sequential(self):
        self.c.cmd("NSNEW", "s2")
        self.assertEqual(nsinfo(self.c, "s2")["mode"], "sequential")
        self.c.cmd("SELECT", "s2")
        self.assertEqual(self.c.cmd("SET", "", "x"), le64(0))
        self.assertError(self.c.cmd("NSSET", "s2", "mode", "user"),
                         "This server instance is configured to use a single runtime mode")

    def test_direct_is_alias_of_seq(self):
        z = self.new_zdb("--mode", "direct")
        c = self.client(z)
        self.assertEqual(c.cmd("SET", "", "d0"), le64(0))
        self.assertEqual(c.cmd("SET", "", "d1"), le64(1))
        self.assertEqual(c.cmd("GET", le64(1)), b"d1")
        self.assertError(c.cmd("SET", "k", "v"), ERR_ONLY_UPDATE)
        self.assertEqual(nsinfo(c, "default")["mode"], "sequential")


class TestUser(ZdbTestCase):
    def test_user_mode(self):
        z = self.new_zdb("--mode", "user")
        c = self.client(z)
        self.assertEqual(c.cmd("SET", "k", "v"), b"k")
        self.assertError(c.cmd("SET", "", "v"), "Invalid argument, key needed")
        self.assertEqual(c.cmd("GET", "k"), b"v")
        self.assertEqual(nsinfo(c, "default")["mode"], "userkey")
        c.cmd("NSNEW", "u2")
        self.assertEqual(nsinfo(c, "u2")["mode"], "userkey")
        self.assertError(c.cmd("NSSET", "u2", "mode", "seq"),
                         "This server instance is configured to use a single runtime mode")
        # an 8-byte key is just a key in user mode
        self.assertEqual(c.cmd("SET", le64(0), "eight"), le64(0))
        self.assertEqual(c.cmd("GET", le64(0)), b"eight")


class TestMixed(ZdbTestCase):
    def setUp(self):
        self.z = self.new_zdb()
        self.c = self.client(self.z)

    def test_default_is_user_and_namespaces_choose(self):
        self.assertEqual(nsinfo(self.c, "default")["mode"], "userkey")
        self.c.cmd("NSNEW", "s")
        self.c.cmd("NSNEW", "u")
        self.assertEqual(nsinfo(self.c, "s")["mode"], "userkey")
        self.assertEqual(self.c.cmd("NSSET", "s", "mode", "seq"), "OK")
        self.assertEqual(nsinfo(self.c, "s")["mode"], "sequential")
        self.c.cmd("SELECT", "s")
        self.assertEqual(self.c.cmd("SET", "", "seq-0"), le64(0))
        self.assertEqual(self.c.cmd("SET", "", "seq-1"), le64(1))
        self.assertError(self.c.cmd("SET", "name", "v"), ERR_ONLY_UPDATE)
        self.c.cmd("SELECT", "u")
        self.assertEqual(self.c.cmd("SET", "name", "user-value"), b"name")
        self.assertError(self.c.cmd("SET", "", "v"), "Invalid argument, key needed")
        self.c.cmd("SELECT", "default")
        self.assertEqual(self.c.cmd("SET", "dk", "dv"), b"dk")

    def test_mode_change_only_while_empty(self):
        self.c.cmd("NSNEW", "m")
        self.assertEqual(self.c.cmd("NSSET", "m", "mode", "seq"), "OK")
        self.assertEqual(self.c.cmd("NSSET", "m", "mode", "user"), "OK")
        self.assertEqual(self.c.cmd("NSSET", "m", "mode", "seq"), "OK")
        self.c.cmd("SELECT", "m")
        self.c.cmd("SET", "", "x")
        self.assertError(self.c.cmd("NSSET", "m", "mode", "user"), "Cannot change mode of used namespace")
        self.assertError(self.c.cmd("NSSET", "m", "mode", "seq"), "Cannot change mode of used namespace")
        # deleting the only key does not make it fresh again
        self.c.cmd("DEL", le64(0))
        self.assertError(self.c.cmd("NSSET", "m", "mode", "user"), "Cannot change mode of used namespace")
        self.assertEqual(nsinfo(self.c, "m")["mode"], "sequential")

    def test_mode_survives_restart(self):
        self.c.cmd("NSNEW", "s")
        self.c.cmd("NSSET", "s", "mode", "seq")
        self.c.cmd("SELECT", "s")
        self.c.cmd("SET", "", "zero")
        self.c.cmd("SELECT", "default")
        self.c.cmd("SET", "user", "key")
        self.c.close()
        self.z.restart()
        c = self.client(self.z)
        self.assertEqual(nsinfo(c, "s")["mode"], "sequential")
        self.assertEqual(nsinfo(c, "default")["mode"], "userkey")
        self.assertEqual(c.cmd("GET", "user"), b"key")
        c.cmd("SELECT", "s")
        self.assertEqual(c.cmd("GET", le64(0)), b"zero")
        self.assertEqual(c.cmd("SET", "", "one"), le64(1))

    def test_empty_seq_namespace_survives_restart(self):
        # the mode lives in the first index file header, even with no data yet
        self.c.cmd("NSNEW", "e")
        self.c.cmd("NSSET", "e", "mode", "seq")
        self.c.close()
        self.z.restart()
        c = self.client(self.z)
        self.assertEqual(nsinfo(c, "e")["mode"], "sequential")
        c.cmd("SELECT", "e")
        self.assertEqual(c.cmd("SET", "", "x"), le64(0))


class TestFixedModeMismatch(ZdbTestCase):
    def test_seq_data_refuses_user_mode(self):
        z = self.new_zdb("--mode", "seq")
        c = z.client()
        c.cmd("SET", "", "x")
        c.close()
        z.stop()
        rc, out = z.start_expect_failure(["--mode", "user"])
        self.assertNotEqual(rc, 0)
        # the same mode still starts, data intact
        z.start(["--mode", "seq"])
        c = self.client(z)
        self.assertEqual(c.cmd("GET", le64(0)), b"x")

    def test_user_data_refuses_seq_mode(self):
        z = self.new_zdb("--mode", "user")
        c = z.client()
        c.cmd("SET", "k", "v")
        c.close()
        z.stop()
        rc, out = z.start_expect_failure(["--mode", "seq"])
        self.assertNotEqual(rc, 0)
        rc, out = z.start_expect_failure(["--mode", "direct"])
        self.assertNotEqual(rc, 0)
        z.start(["--mode", "user"])
        c = self.client(z)
        self.assertEqual(c.cmd("GET", "k"), b"v")

    def test_mixed_data_refuses_a_fixed_mode(self):
        z = self.new_zdb()
        c = z.client()
        c.cmd("SET", "k", "v")  # default: user
        c.cmd("NSNEW", "s")
        c.cmd("NSSET", "s", "mode", "seq")
        c.cmd("SELECT", "s")
        c.cmd("SET", "", "x")
        c.close()
        z.stop()
        rc, _ = z.start_expect_failure(["--mode", "user"])
        self.assertNotEqual(rc, 0)
        rc, _ = z.start_expect_failure(["--mode", "seq"])
        self.assertNotEqual(rc, 0)
        # mixed again: both namespaces as they were
        z.start([])
        c = self.client(z)
        self.assertEqual(c.cmd("GET", "k"), b"v")
        c.cmd("SELECT", "s")
        self.assertEqual(c.cmd("GET", le64(0)), b"x")

    def test_fixed_mode_data_opens_in_mixed_mode(self):
        z = self.new_zdb("--mode", "seq")
        c = z.client()
        c.cmd("SET", "", "x")
        c.close()
        z.restart(args=[])
        c = self.client(z)
        self.assertEqual(nsinfo(c, "default")["mode"], "sequential")
        self.assertEqual(c.cmd("GET", le64(0)), b"x")
        self.assertEqual(c.cmd("SET", "", "y"), le64(1))


class TestCommandLine(ZdbTestCase):
    def test_lockfiles_held(self):
        z = self.new_zdb()
        for d in (z.index_dir, z.data_dir):
            path = os.path.join(d, ".lockfile")
            self.assertTrue(os.path.exists(path), path)
            with open(path, "rb") as f:
                with self.assertRaises(BlockingIOError, msg="%s is not flock()ed" % path):
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        # a second server on the same directories must refuse to start
        second = zdbtest.Zdb(tmpdir=z.tmpdir)
        rc, out = second.start_expect_failure([])
        self.assertNotEqual(rc, 0)
        c = self.client(z)
        self.assertEqual(c.cmd("PING"), "PONG")

    def test_same_index_and_data_dir_refused(self):
        z = self.new_zdb(start=False)
        z.data_dir = z.index_dir
        rc, out = z.start_expect_failure([])
        self.assertNotEqual(rc, 0)

    def expect_exit_1(self, *args):
        z = self.new_zdb(start=False)
        rc, out = z.start_expect_failure(list(args))
        self.assertEqual(rc, 1, "zdb %s: exit status %s, output:\n%s" % (" ".join(args), rc, out))
        self.assertTrue(out.strip(), "zdb %s exited without a message" % " ".join(args))

    def test_bad_mode(self):
        self.expect_exit_1("--mode", "banana")

    def test_unknown_flag(self):
        self.expect_exit_1("--no-such-flag")

    def test_bad_datasize(self):
        self.expect_exit_1("--datasize", "lots")

    def test_protect_without_admin(self):
        self.expect_exit_1("--protect")

    def test_single_dash_long_flags(self):
        z = self.new_zdb("-mode", "seq", "-datasize", "1M")
        c = self.client(z)
        self.assertEqual(c.cmd("SET", "", "x"), le64(0))


if __name__ == "__main__":
    zdbtest.main()
