#!/usr/bin/env python3
"""zdb integration tests: stock redis tools against zdb (redis-cli, redis-benchmark).

Skipped with a message when the tools are missing (scripts/deps.sh installs redis-tools).
"""

import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zdbtest  # noqa: E402
from zdbtest import ZdbTestCase  # noqa: E402

REDIS_CLI = shutil.which("redis-cli")
REDIS_BENCHMARK = shutil.which("redis-benchmark")
SKIP_CLI = "redis-cli not installed (scripts/deps.sh installs redis-tools)"
SKIP_BENCH = "redis-benchmark not installed (scripts/deps.sh installs redis-tools)"


def run(argv, stdin=None, timeout=180):
    """Run a tool with a bounded time; stdin is bytes fed to it (or nothing)."""
    if stdin is None:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
    else:
        p = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


@unittest.skipIf(REDIS_CLI is None, SKIP_CLI)
class TestRedisCli(ZdbTestCase):
    def setUp(self):
        self.z = self.new_zdb()

    def cli(self, *args):
        rc, out, err = run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.z.port)] + list(args), timeout=30)
        self.assertEqual(rc, 0, "redis-cli %s: rc %d, stderr %s" % (" ".join(args), rc, err))
        return out

    def cli_script(self, lines):
        data = ("\n".join(lines) + "\n").encode()
        rc, out, err = run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.z.port)], stdin=data, timeout=30)
        self.assertEqual(rc, 0, "redis-cli script: rc %d, stderr %s" % (rc, err))
        return [line for line in out.split("\n")]

    def test_set_get_del(self):
        self.assertEqual(self.cli("SET", "foo", "bar").strip(), "foo")  # zdb replies the key
        self.assertEqual(self.cli("GET", "foo").strip(), "bar")
        self.assertEqual(self.cli("SET", "foo", "bar").strip(), "")  # identical value: nil
        self.assertEqual(self.cli("EXISTS", "foo").strip(), "1")
        self.assertEqual(self.cli("DEL", "foo").strip(), "OK")
        self.assertEqual(self.cli("GET", "foo").strip(), "")
        self.assertIn("Key not found", self.cli("DEL", "foo"))
        self.assertEqual(self.cli("PING").strip(), "PONG")
        self.assertIn("Command not supported", self.cli("FLUSHALL"))
        self.z.check_alive()

    def test_namespaces(self):
        self.assertEqual(self.cli("NSNEW", "clins").strip(), "OK")
        out = self.cli_script(["SELECT clins", "SET k value-in-ns", "GET k", "DBSIZE"])
        self.assertEqual(out[:4], ["OK", "k", "value-in-ns", "1"])
        self.assertEqual(self.cli("GET", "k").strip(), "")  # default namespace: not there
        info = self.cli("NSINFO", "clins")
        self.assertIn("# namespace", info)
        self.assertIn("name: clins", info)
        self.assertIn("entries: 1", info)
        self.assertIn("mode: userkey", info)
        listing = self.cli("NSLIST").split()
        self.assertEqual(sorted(listing), ["clins", "default"])
        self.assertEqual(self.cli("NSSET", "clins", "password", "pw").strip(), "OK")
        self.assertEqual(self.cli("NSSET", "clins", "public", "0").strip(), "OK")
        out = self.cli_script(["SELECT clins", "SELECT clins pw", "GET k"])
        self.assertEqual(out[0], "Namespace protected and private")
        self.assertIn("OK", out[1:3])
        self.assertIn("value-in-ns", out)

    def test_info(self):
        out = self.cli("INFO")
        self.assertIn("sequential_key_size: 8", out)
        self.assertIn("# server", out)

    def test_binary_safe_and_large(self):
        big = "x" * 100000  # one argv string is limited to 128 KiB
        self.assertEqual(self.cli("SET", "big", big).strip(), "big")
        self.assertEqual(self.cli("LENGTH", "big").strip(), "100000")
        self.assertEqual(self.cli("GET", "big").strip(), big)


@unittest.skipIf(REDIS_BENCHMARK is None, SKIP_BENCH)
class TestRedisBenchmark(ZdbTestCase):
    def bench(self, *extra):
        z = self.new_zdb()
        argv = [REDIS_BENCHMARK, "-h", "127.0.0.1", "-p", str(z.port), "-t", "set,get",
                "-n", "20000", "-c", "20", "-q"] + list(extra)
        rc, out, err = run(argv, timeout=300)
        text = out.replace("\r", "\n")
        self.assertEqual(rc, 0, "redis-benchmark rc %d\nstdout:\n%s\nstderr:\n%s" % (rc, out[-2000:], err[-2000:]))
        for name in ("SET", "GET"):
            self.assertRegex(text, r"(?m)^%s: [0-9.]+ requests per second" % name,
                             "no %s rate in output:\n%s" % (name, text[-2000:]))
        self.assertNotRegex(text, r"(?mi)^(ERR|Error)", text[-2000:])
        z.check_alive()
        c = self.client(z)
        self.assertEqual(c.cmd("PING"), "PONG")
        self.assertEqual(c.cmd("DBSIZE"), 1)  # redis-benchmark uses a single key without -r
        return text

    def test_unpipelined(self):
        self.bench()

    def test_pipelined(self):
        self.bench("-P", "16")


if __name__ == "__main__":
    zdbtest.main()
