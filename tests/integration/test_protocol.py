#!/usr/bin/env python3
"""zdb integration tests: RESP transport (spec section 1)."""

import os
import random
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zdbtest  # noqa: E402
from zdbtest import ConnectionClosed, RespError, ZdbTestCase, encode_command  # noqa: E402

MiB = 1024 * 1024


def send_ignoring_close(client, data):
    """Send data; a server that already closed the connection is not an error here."""
    try:
        client.send_raw(data)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


class TestMalformed(ZdbTestCase):
    def setUp(self):
        self.z = self.new_zdb()

    def assert_still_serving(self):
        c = self.client(self.z)
        self.assertEqual(c.cmd("PING"), "PONG")

    def test_inline_command_rejected_and_closed(self):
        c = self.client(self.z)
        c.send_raw(b"PING\r\n")
        self.assertError(c.read_reply(), "Malformed request, array expected")
        self.assertTrue(c.is_closed(), "connection not closed after an inline command")
        self.assert_still_serving()

    def test_inline_after_valid_request(self):
        c = self.client(self.z)
        c.send_raw(encode_command("PING") + b"GET x\r\n")
        self.assertEqual(c.read_reply(), "PONG")
        self.assertError(c.read_reply(), "Malformed request, array expected")
        self.assertTrue(c.is_closed())

    def test_non_bulk_element(self):
        c = self.client(self.z)
        c.send_raw(b"*1\r\n:1\r\n")
        self.assertError(c.read_reply(), "Malformed query string")
        c2 = self.client(self.z)
        c2.send_raw(b"*2\r\n$3\r\nGET\r\n+key\r\n")
        self.assertError(c2.read_reply(), "Malformed query string")
        self.assert_still_serving()

    def test_empty_array(self):
        c = self.client(self.z)
        c.send_raw(b"*0\r\n")
        self.assertError(c.read_reply(), "Missing arguments")
        self.assert_still_serving()

    def test_too_many_arguments(self):
        c = self.client(self.z)
        req = b"*1025\r\n$4\r\nMGET\r\n" + b"$1\r\nk\r\n" * 1024
        send_ignoring_close(c, req)
        self.assertError(c.read_reply(), "Too many arguments")
        self.assert_still_serving()

    def test_1024_arguments_accepted(self):
        c = self.client(self.z)
        c.cmd("SET", "k7", "seven")
        keys = ["k%d" % i for i in range(1023)]
        r = c.cmd("MGET", *keys)
        self.assertIsInstance(r, list)
        self.assertEqual(len(r), 1023)
        self.assertEqual(r[7], b"seven")
        self.assertEqual(sum(1 for v in r if v is not None), 1)

    def test_payload_too_big_closes(self):
        c = self.client(self.z)
        header = b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n" % (8 * MiB + 1)
        c.send_raw(header)
        try:
            reply = c.read_reply(timeout=3.0)
        except socket.timeout:
            # the server may want to see the body before judging it: send it
            send_ignoring_close(c, b"x" * (8 * MiB + 1) + b"\r\n")
            reply = c.read_reply()
        self.assertError(reply, "Payload too big")
        self.assertTrue(c.is_closed(), "connection not closed after an oversize bulk")
        c2 = self.client(self.z)
        self.assertIsNone(c2.cmd("GET", "big"))

    def test_exactly_8mib_accepted(self):
        c = self.client(self.z, timeout=60)
        value = random.Random(8).randbytes(8 * MiB)
        self.assertEqual(c.cmd("SET", "max", value), b"max")
        self.assertEqual(c.cmd("LENGTH", "max"), 8 * MiB)
        self.assertEqual(c.cmd("GET", "max"), value)
        self.assertEqual(c.cmd("CHECK", "max"), 1)

    def test_abrupt_disconnects(self):
        # a client closing in the middle of a header, a bulk, or with unread replies
        pieces = [b"*3\r\n$3\r\nSE", b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nabc",
                  encode_command("SET", "x", "y" * 1000) * 50, b"*2\r\n$3\r\nGET\r\n$"]
        for p in pieces:
            c = zdbtest.Client(port=self.z.port)
            c.send_raw(p)
            c.close()
        # a client reset (RST) while replies are pending
        c = zdbtest.Client(port=self.z.port)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.send_raw(encode_command("GET", "x") * 200)
        c.close()
        c = self.client(self.z)
        self.assertEqual(c.cmd("GET", "x"), b"y" * 1000)
        self.assertIsNone(c.cmd("GET", "k"))
        self.assert_still_serving()

    def test_garbage_connections_do_not_disturb_others(self):
        good = self.client(self.z)
        good.cmd("SET", "stable", "value")
        garbage = [b"\x00\x01\x02\xff" * 64, b"HELLO\r\n", b"*-5\r\n", b"*abc\r\n",
                   b"*2\r\n$-7\r\n", b"*1\r\n*1\r\n$4\r\nPING\r\n", b"$4\r\nPING\r\n"]
        for g in garbage:
            c = zdbtest.Client(port=self.z.port, timeout=5)
            send_ignoring_close(c, g)
            try:
                c.read_reply(timeout=0.5)
            except (socket.timeout, ConnectionClosed, zdbtest.ProtocolViolation):
                pass
            c.close()
            self.assertEqual(good.cmd("GET", "stable"), b"value")
        self.z.check_alive()

    def test_hostile_headers(self):
        good = self.client(self.z)
        good.cmd("SET", "stable", "value")
        hostile = [
            b"*3\r\n$3\r\nSET\r\n$-1\r\n$1\r\nv\r\n",
            b"*1\r\n$99999999999999999999\r\n",
            b"*99999999999999999999\r\n",
            b"*-1\r\n",
            b"*2\r\n$3\r\nGET\r\n$3\r\nabcXY",
            b"*1\r\n$4\r\nPINGxx",
            b"*1\r\n$+4\r\nPING\r\n",
            b"*1\r\n$ 4\r\nPING\r\n",
            b"*1\r\n$4\nPING\n",
            b"*1\n$4\r\nPING\r\n",
            b"*\r\n",
            b"$\r\n",
            b"*1\r\n$\r\n",
            b"*2147483648\r\n",
            b"*1\r\n$4294967296\r\n",
            b"*1\r\n$9223372036854775807\r\n",
            b"\r\n\r\n\r\n",
            b"*1\r\n" + b"$1\r\nx\r\n" * 5,
        ]
        for h in hostile:
            c = zdbtest.Client(port=self.z.port, timeout=5)
            send_ignoring_close(c, h)
            try:
                c.read_reply(timeout=0.3)
            except (socket.timeout, ConnectionClosed, zdbtest.ProtocolViolation):
                pass
            c.close()
            self.assertEqual(good.cmd("GET", "stable"), b"value", "after %r" % h)
        self.z.check_alive()

    def test_random_garbage_connections(self):
        good = self.client(self.z)
        rnd = random.Random(77)
        alphabet = [b"*", b"$", b"\r\n", b"\r", b"\n", b"1", b"0", b"-", b"9" * 12, b"SET", b"GET", b"PING", b"x"]
        for i in range(150):
            if i % 3 == 0:
                data = rnd.randbytes(rnd.randint(1, 200))
            else:
                data = b"".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 40)))
            c = zdbtest.Client(port=self.z.port, timeout=5)
            send_ignoring_close(c, data)
            c.close()
        self.assertEqual(good.cmd("PING"), "PONG")
        self.z.check_alive()


class TestFraming(ZdbTestCase):
    def setUp(self):
        self.z = self.new_zdb()
        self.c = self.client(self.z)

    def test_byte_by_byte(self):
        req = encode_command("SET", "split-key", "split value\r\n with CRLF") + encode_command("GET", "split-key")
        for i in range(len(req)):
            self.c.send_raw(req[i:i + 1])
            time.sleep(0.001)
        self.assertEqual(self.c.read_reply(), b"split-key")
        self.assertEqual(self.c.read_reply(), b"split value\r\n with CRLF")

    def test_split_at_every_position(self):
        req = encode_command("SET", "sp", "0123456789")
        for cut in range(1, len(req)):
            self.c.send_raw(req[:cut])
            time.sleep(0.002)
            self.c.send_raw(req[cut:])
            r = self.c.read_reply()
            # the first write stores the value; the rest are identical writes -> nil
            if cut == 1:
                self.assertEqual(r, b"sp")
            else:
                self.assertIsNone(r, "split at %d" % cut)
        get = encode_command("GET", "sp")
        for cut in range(1, len(get)):
            self.c.send_raw(get[:cut])
            time.sleep(0.002)
            self.c.send_raw(get[cut:])
            self.assertEqual(self.c.read_reply(), b"0123456789", "split at %d" % cut)

    def test_pipelined_requests_in_one_send(self):
        n = 2000
        cmds = [("SET", "p%05d" % i, "value-%d" % i) for i in range(n)]
        replies = self.c.pipeline(cmds)
        self.assertEqual(replies, [b"p%05d" % i for i in range(n)])
        cmds = []
        for i in range(n):
            cmds.append(("GET", "p%05d" % i))
            if i % 100 == 0:
                cmds.append(("PING",))
                cmds.append(("FOOBAR",))
        replies = self.c.pipeline(cmds)
        expected = []
        for i in range(n):
            expected.append(b"value-%d" % i)
            if i % 100 == 0:
                expected.append("PONG")
                expected.append(RespError("Command not supported"))
        self.assertEqual(replies, expected)
        self.assertEqual(self.c.cmd("DBSIZE"), n)

    def test_pipelined_select(self):
        self.c.cmd("NSNEW", "pa")
        self.c.cmd("NSNEW", "pb")
        replies = self.c.pipeline([("SELECT", "pa"), ("SET", "k", "in a"), ("SELECT", "pb"), ("SET", "k", "in b"),
                                   ("GET", "k"), ("SELECT", "pa"), ("GET", "k"), ("SELECT", "nope"), ("GET", "k")])
        self.assertEqual(replies, ["OK", b"k", "OK", b"k", b"in b", "OK", b"in a",
                                   RespError("Namespace not found"), b"in a"])

    def test_pipeline_with_big_values(self):
        rnd = random.Random(3)
        values = [rnd.randbytes(rnd.randint(0, 300000)) for _ in range(12)]
        cmds = [("SET", "big%d" % i, v) for i, v in enumerate(values)]
        cmds += [("GET", "big%d" % i) for i in range(len(values))]
        replies = self.c.pipeline(cmds, timeout=60)
        self.assertEqual(replies[:12], [b"big%d" % i for i in range(12)])
        self.assertEqual(replies[12:], values)

    def test_many_requests_in_random_chunks(self):
        rnd = random.Random(11)
        cmds = [("SET", "c%d" % i, rnd.randbytes(rnd.randint(0, 64))) for i in range(300)]
        stream = b"".join(encode_command(*c) for c in cmds)
        pos = 0
        while pos < len(stream):
            n = rnd.randint(1, 97)
            self.c.send_raw(stream[pos:pos + n])
            pos += n
        for i in range(300):
            self.assertEqual(self.c.read_reply(), b"c%d" % i)
        for i in (0, 150, 299):
            self.assertEqual(self.c.cmd("GET", "c%d" % i), cmds[i][2])

    def test_big_value_round_trip(self):
        c = self.client(self.z, timeout=60)
        value = random.Random(5).randbytes(8 * MiB)
        self.assertEqual(c.cmd("SET", "eight", value), b"eight")
        self.assertEqual(c.cmd("GET", "eight"), value)
        # and after a restart, from disk
        c.close()
        self.z.restart()
        c = self.client(self.z, timeout=60)
        self.assertEqual(c.cmd("GET", "eight"), value)


class TestConcurrency(ZdbTestCase):
    def test_fifty_concurrent_clients(self):
        z = self.new_zdb()
        errors = []
        nthreads, nops = 50, 40

        def worker(t):
            try:
                c = z.client(timeout=60)
                try:
                    for i in range(nops):
                        key = "t%d-%d" % (t, i)
                        value = ("%d:%d:" % (t, i)).encode() * (1 + (i % 7))
                        r = c.cmd("SET", key, value)
                        if r != key.encode():
                            errors.append("SET %s -> %r" % (key, r))
                            return
                        r = c.cmd("GET", key)
                        if r != value:
                            errors.append("GET %s -> %r" % (key, r))
                            return
                finally:
                    c.close()
            except Exception as e:  # reported below
                errors.append("thread %d: %r" % (t, e))

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(nthreads)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        self.assertFalse(any(th.is_alive() for th in threads), "client threads did not finish")
        self.assertEqual(errors, [])
        c = self.client(z)
        self.assertEqual(c.cmd("DBSIZE"), nthreads * nops)
        self.assertEqual(c.cmd("GET", "t17-23"), b"17:23:" * (1 + 23 % 7))

    def test_many_idle_connections(self):
        z = self.new_zdb()
        conns = [z.client() for _ in range(200)]
        try:
            for c in conns[::20]:
                self.assertEqual(c.cmd("PING"), "PONG")
        finally:
            for c in conns:
                c.close()
        c = self.client(z)
        self.assertEqual(c.cmd("PING"), "PONG")

    def test_slow_reader_does_not_block_others(self):
        z = self.new_zdb()
        setter = self.client(z, timeout=60)
        big = random.Random(9).randbytes(1 * MiB)
        self.assertEqual(setter.cmd("SET", "big", big), b"big")
        slow = self.client(z, timeout=60)
        n = 40
        slow.send_raw(encode_command("GET", "big") * n)  # 40 MiB of replies, not read yet
        time.sleep(0.2)
        other = self.client(z, timeout=10)
        for i in range(20):
            self.assertEqual(other.cmd("SET", "o%d" % i, "v"), b"o%d" % i)
            self.assertEqual(other.cmd("GET", "o%d" % i), b"v")
        for i in range(n):
            self.assertEqual(slow.read_reply(), big, "reply %d" % i)
        self.assertEqual(slow.cmd("PING"), "PONG")

    def test_interleaved_partial_requests(self):
        z = self.new_zdb()
        a, b = self.client(z), self.client(z)
        ra = encode_command("SET", "from-a", "A" * 5000)
        rb = encode_command("SET", "from-b", "B" * 5000)
        step = 500
        for i in range(0, max(len(ra), len(rb)), step):
            a.send_raw(ra[i:i + step])
            b.send_raw(rb[i:i + step])
            time.sleep(0.001)
        self.assertEqual(a.read_reply(), b"from-a")
        self.assertEqual(b.read_reply(), b"from-b")
        self.assertEqual(a.cmd("GET", "from-b"), b"B" * 5000)


class TestUnixSocket(ZdbTestCase):
    def test_unix_socket(self):
        z = self.new_zdb(unix=True)
        self.assertTrue(os.path.exists(z.socket_path))
        c = self.client(z)
        self.assertEqual(c.cmd("PING"), "PONG")
        self.assertEqual(c.cmd("SET", "u", "over unix"), b"u")
        self.assertEqual(c.cmd("GET", "u"), b"over unix")
        replies = c.pipeline([("SET", "u%d" % i, "v") for i in range(500)])
        self.assertEqual(len(replies), 500)
        self.assertEqual(replies[-1], b"u499")
        bad = self.client(z)
        bad.send_raw(b"PING\r\n")
        self.assertError(bad.read_reply(), "Malformed request, array expected")
        self.assertTrue(bad.is_closed())
        self.assertEqual(c.cmd("DBSIZE"), 501)
        c.close()
        z.restart()
        c = self.client(z)
        self.assertEqual(c.cmd("GET", "u"), b"over unix")


if __name__ == "__main__":
    zdbtest.main()
