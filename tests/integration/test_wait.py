#!/usr/bin/env python3
"""WAIT cmd|* [timeout_ms]: a client parked until another client of its namespace runs a
command. Wake-up replies (+<CMD>), the timeout (-Timeout), prefix matching of the
command name, namespaces, requests sent while parked (held back, then run in order),
disconnection while parked, many waiters, RELOAD of the namespace of a waiter, and the
argument errors.

Nothing here asserts how long anything takes: a reply that must come is awaited with a
generous bound, and one that must not come is checked after a round trip of another
client (the server is single-threaded, so it has handled everything sent before). For the
same reason a WAIT is followed by a round trip of a client of another namespace (which wakes
nobody) before anything is done to wake it: without it the waking command could be handled
before the WAIT."""

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zdbtest  # noqa: E402
from zdbtest import RespError, ZdbTestCase  # noqa: E402


class WaitTest(ZdbTestCase):
    def setUp(self):
        self.z = self.new_zdb()
        self.a = self.client(self.z)
        self.b = self.client(self.z)
        self.sync = self.client(self.z)
        self.assertEqual(self.sync.cmd("NSNEW", "elsewhere"), "OK")
        self.assertEqual(self.sync.cmd("SELECT", "elsewhere"), "OK")

    def park(self, client, *args):
        """Sends WAIT args from client; returns once the server has handled it."""
        client.send_command("WAIT", *args)
        self.assertEqual(self.sync.cmd("PING"), "PONG")

    def assertNothingPending(self, client, other):
        """client got no reply: checked after a round trip of other, plus a short grace."""
        self.assertEqual(other.cmd("PING"), "PONG")
        try:
            r = client.read_reply(timeout=0.2)
        except socket.timeout:
            return
        self.fail("unexpected reply %r" % (r,))

    def test_wakes_on_command(self):
        self.park(self.a, "SET")
        self.assertNothingPending(self.a, self.b)
        self.assertEqual(self.b.cmd("GET", "k"), None)  # another command: still waiting
        self.assertNothingPending(self.a, self.b)
        self.assertEqual(self.b.cmd("SET", "k", "v"), b"k")
        self.assertEqual(self.a.read_reply(), "SET")
        self.assertEqual(self.a.cmd("GET", "k"), b"v")  # and it works normally afterwards

    def test_any_command(self):
        for wildcard in ("*", ""):
            self.park(self.a, wildcard, "60000")
            self.assertEqual(self.b.cmd("DBSIZE"), 0)
            self.assertEqual(self.a.read_reply(), "DBSIZE")

    def test_failed_command_wakes_too(self):
        # as 0-db: the command reached its handler, whatever it answered
        self.park(self.a, "DEL")
        self.assertError(self.b.cmd("DEL", "missing"), "Key not found")
        self.assertEqual(self.a.read_reply(), "DEL")

    def test_prefix_matching(self):
        self.park(self.a, "s")  # the first command starting with S: SET
        self.assertEqual(self.b.cmd("SETX", "x", "1"), b"x")  # SETX is another entry
        self.assertNothingPending(self.a, self.b)
        self.assertEqual(self.b.cmd("SET", "x", "2"), b"x")
        self.assertEqual(self.a.read_reply(), "SET")
        self.park(self.a, "setx")
        self.assertEqual(self.b.cmd("SETX", "x", "3"), b"x")
        self.assertEqual(self.a.read_reply(), "SETX")
        self.park(self.a, "NSJ")
        self.assertEqual(self.b.cmd("NSJUMP"), "OK")
        self.assertEqual(self.a.read_reply(), "NSJUMP")

    def test_timeout(self):
        self.park(self.a, "SET", "100")
        self.assertEqual(self.a.read_reply(timeout=20), RespError("Timeout"))
        self.assertEqual(self.a.cmd("PING"), "PONG")
        # a later SET does not send a stale notification
        self.assertEqual(self.b.cmd("SET", "k", "v"), b"k")
        self.assertNothingPending(self.a, self.b)
        self.assertEqual(self.a.cmd("PING"), "PONG")

    def test_own_commands_do_not_wake(self):
        # requests sent after WAIT are held back; they run, in order, once it ends
        self.a.send_raw(zdbtest.encode_command("WAIT", "SET", "60000") +
                        zdbtest.encode_command("SET", "mine", "1") +
                        zdbtest.encode_command("PING") +
                        zdbtest.encode_command("GET", "theirs"))
        self.assertNothingPending(self.a, self.b)
        self.assertEqual(self.b.cmd("GET", "mine"), None)  # not run yet
        self.assertEqual(self.b.cmd("SET", "theirs", "2"), b"theirs")
        self.assertEqual([self.a.read_reply() for _ in range(4)], ["SET", b"mine", "PONG", b"2"])

    def test_namespaces(self):
        self.assertEqual(self.b.cmd("NSNEW", "w1"), "OK")
        self.assertEqual(self.a.cmd("SELECT", "w1"), "OK")
        self.park(self.a, "SET")
        self.assertEqual(self.b.cmd("SET", "k", "in default"), b"k")
        self.assertNothingPending(self.a, self.b)
        self.assertEqual(self.b.cmd("SELECT", "w1"), "OK")
        self.assertEqual(self.b.cmd("SET", "k", "in w1"), b"k")
        self.assertEqual(self.a.read_reply(), "SET")

    def test_many_waiters(self):
        waiters = [self.client(self.z) for _ in range(6)]
        for w in waiters:
            self.park(w, "SET", "60000")
        self.assertEqual(self.b.cmd("PING"), "PONG")
        self.assertEqual(self.b.cmd("SET", "k", "v"), b"k")
        for w in waiters:
            self.assertEqual(w.read_reply(), "SET")
        for w in waiters:
            self.assertEqual(w.cmd("PING"), "PONG")

    def test_wait_itself_is_a_command(self):
        # as 0-db: a client waiting on any command is woken by another client's WAIT
        self.park(self.a, "*", "60000")
        self.park(self.b, "SET", "60000")
        self.assertEqual(self.a.read_reply(), "WAIT")
        self.assertEqual(self.a.cmd("SET", "k", "v"), b"k")
        self.assertEqual(self.b.read_reply(), "SET")

    def test_disconnect_while_waiting(self):
        gone = self.z.client()
        self.park(gone, "SET", "60000")
        self.assertEqual(self.b.cmd("PING"), "PONG")
        gone.close()
        self.assertEqual(self.b.cmd("SET", "k", "v"), b"k")
        self.assertEqual(self.b.cmd("PING"), "PONG")
        # and one that leaves after its wake-up was queued
        gone = self.z.client()
        self.park(gone, "GET", "60000")
        self.assertEqual(self.b.cmd("PING"), "PONG")
        self.b.send_command("GET", "k")
        gone.close()
        self.assertEqual(self.b.read_reply(), b"v")
        self.assertEqual(self.b.cmd("PING"), "PONG")

    def test_waiter_survives_reload(self):
        self.park(self.a, "SET", "60000")
        self.assertEqual(self.b.cmd("RELOAD", "default"), "OK")
        self.assertEqual(self.b.cmd("SET", "k", "v"), b"k")
        self.assertEqual(self.a.read_reply(), "SET")
        self.assertEqual(self.a.cmd("GET", "k"), b"v")

    def test_pipelined_wakeup(self):
        # the waking SET and the waiter's own requests in the same loop turns
        self.park(self.a, "SET", "60000")
        replies = self.b.pipeline([("SET", "p", "1"), ("SET", "p", "2"), ("GET", "p")])
        self.assertEqual(replies, [b"p", b"p", b"2"])
        self.assertEqual(self.a.read_reply(), "SET")
        self.assertNothingPending(self.a, self.b)  # woken once, not twice

    def test_errors(self):
        self.assertError(self.a.cmd("WAIT"), "Invalid arguments")
        self.assertError(self.a.cmd("WAIT", "SET", "1000", "x"), "Invalid arguments")
        self.assertError(self.a.cmd("WAIT", "FOOBAR"), "Unknown command to watch")
        self.assertError(self.a.cmd("WAIT", "SETXY"), "Unknown command to watch")
        for t in ("99", "0", "1800001", "abc", "", "-1", "100x", "1" * 17, "99999999999999999999"):
            self.assertError(self.a.cmd("WAIT", "SET", t), "Invalid timeout")
        # the bounds themselves are accepted
        self.park(self.a, "PING", "1800000")
        self.assertEqual(self.b.cmd("PING"), "PONG")
        self.assertEqual(self.a.read_reply(), "PING")
        self.park(self.a, "PING", "100")
        self.assertEqual(self.a.read_reply(timeout=20), RespError("Timeout"))
        self.assertEqual(self.a.cmd("PING"), "PONG")


if __name__ == "__main__":
    zdbtest.main()
