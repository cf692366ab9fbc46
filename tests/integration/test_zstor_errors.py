"""zstor failures: a wrong key, a missing config key, a backend that answers garbage, a full
namespace, a file outside root, a meta backend down. Each gives exit 1 and one clear line
(what, which file or backend, why), and leaves nothing half-written on any backend."""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zstortest  # noqa: E402
from zstortest import (FakeServer, FakeZdb, SilentServer, ZstorTestCase, key_hex,  # noqa: E402
                       zstor_binary)

FAST = "retries = 1\nretry_backoff_ms = 20\nconnect_timeout_ms = 2000\nrequest_timeout_ms = 3000"


class Errors(ZstorTestCase):
    def setUp(self):
        self.c = self.new_cluster(extra=FAST)
        self.file = self.c.write("in/f.bin", os.urandom(400000))
        self.assertOk(self.c.zstor("store", "-f", self.file))
        self.before = self.c.entries()
        self.new = self.c.write("in/new.bin", os.urandom(300000))

    def unchanged(self):
        now = self.c.entries()  # the backends still alive
        self.assertEqual(now, {k: v for k, v in self.before.items() if k in now})

    def test_wrong_data_key(self):
        cfg = self.c.write_config(path=os.path.join(self.c.tmp, "wrong.toml"), data_key=key_hex())
        r = self.c.zstor("retrieve", "-f", self.file, "-o", os.path.join(self.c.tmp, "x"), config=cfg)
        self.assertFails(r, "retrieve", "f.bin", "data key")
        self.assertFalse(os.path.exists(os.path.join(self.c.tmp, "x")))
        self.unchanged()
        # storing over it with another data key (a rotation, or a typo) replaces it, and
        # says so
        r = self.c.zstor("store", "-f", self.file, config=cfg)
        self.assertOk(r)
        self.assertIn("warning: store %s: the stored version was encrypted with another data key"
                      % self.file, r.err)
        r = self.c.zstor("retrieve", "-f", self.file, "-o", "-", config=cfg)
        self.assertOk(r)

    def test_wrong_meta_key(self):
        cfg = self.c.write_config(path=os.path.join(self.c.tmp, "wrong.toml"), meta_key=key_hex())
        r = self.c.zstor("retrieve", "-f", self.file, config=cfg)
        self.assertFails(r, "retrieve", "f.bin", "meta key")
        # storing over it would lose the file: refused before anything is written
        r = self.c.zstor("store", "-f", self.file, config=cfg)
        self.assertFails(r, "store", "f.bin", "meta key")
        # list: one line for the records it cannot open (not one per record), exit 1
        r = self.c.zstor("list", config=cfg)
        self.assertFails(r, "list", "1 of 1 stored records could not be read", "meta key")
        self.unchanged()

    def test_missing_config_key(self):
        cfg = os.path.join(self.c.tmp, "missing.toml")
        text = self.c.config_text().replace("minimal_shards = 4\n", "")
        with open(cfg, "w") as f:
            f.write(text)
        r = self.c.zstor("store", "-f", self.new, config=cfg)
        self.assertFails(r, "missing.toml", "minimal_shards")
        text = self.c.config_text()
        i = text.index("[encryption]")
        j = text.index("[compression]")
        with open(cfg, "w") as f:
            f.write(text[:i] + "[encryption]\nalgorithm = \"AES\"\n" + text[j:])
        r = self.c.zstor("store", "-f", self.new, config=cfg)
        self.assertFails(r, "missing.toml", "key")
        r = self.c.zstor("status", config=os.path.join(self.c.tmp, "nonexistent.toml"))
        self.assertFails(r, "nonexistent.toml")
        self.unchanged()

    def test_garbage_answering_data_backend(self):
        fake = FakeServer()
        self.addCleanup(fake.close)
        data = list(self.c.data)
        bad = data[5]
        data[5] = type("B", (), {"address": fake.address, "ns": "d5", "kind": "zdb",
                                 "group": bad.group})()
        cfg = self.c.write_config(path=os.path.join(self.c.tmp, "fake.toml"), data=data)
        r = self.c.zstor("store", "-f", self.new, config=cfg)
        line = self.assertFails(r, "store", "new.bin", fake.address)
        self.assertIn("only 5 of 6", line)
        self.unchanged()

    def test_garbage_answering_meta_backend(self):
        fake = FakeServer(reply=b"-ERR what\r\n+OK\r\n:12\r\n*9\r\n")
        self.addCleanup(fake.close)
        meta = list(self.c.meta)
        meta[2] = type("B", (), {"address": fake.address, "ns": "m2", "kind": "zdb"})()
        cfg = self.c.write_config(path=os.path.join(self.c.tmp, "fake.toml"), meta=meta)
        r = self.c.zstor("store", "-f", self.new, config=cfg)
        self.assertFails(r, "store", "new.bin", "meta backend", fake.address)
        self.unchanged()
        # reads work with the three others, the garbage is skipped
        r = self.c.zstor("retrieve", "-f", self.file, "-o", "-", config=cfg)
        self.assertOk(r)
        with open(self.file, "rb") as f:
            self.assertEqual(r.out, f.read())

    def test_silent_backends_cost_seconds_not_the_request_timeout(self):
        # a meta and a data backend that accept connections and never answer (a hung
        # zdb): the probes give up after the connect timeout, so reads skip them and a
        # store is refused at once instead of after the request timeout (here 10 minutes,
        # twice; the command's own limit below would then fail the test)
        fake = SilentServer()
        self.addCleanup(fake.close)
        meta = list(self.c.meta)
        meta[1] = type("B", (), {"address": fake.address, "ns": "m1", "kind": "zdb"})()
        data = list(self.c.data)
        data[5] = type("B", (), {"address": fake.address, "ns": "d5", "kind": "zdb",
                                 "group": data[5].group})()
        slow = "retries = 1\nconnect_timeout_ms = 1000\nrequest_timeout_ms = 600000"
        cfg = self.c.write_config(path=os.path.join(self.c.tmp, "silent.toml"), meta=meta,
                                  data=data, extra=slow)
        r = self.c.zstor("retrieve", "-f", self.file, "-o", "-", config=cfg, timeout=150)
        self.assertOk(r)
        with open(self.file, "rb") as f:
            self.assertEqual(r.out, f.read())
        r = self.c.zstor("store", "-f", self.new, config=cfg, timeout=150)
        self.assertFails(r, "store", "new.bin", "meta backend not usable", fake.address,
                         "timeout")
        r = self.c.zstor("status", config=cfg, timeout=150)
        self.assertOk(r)
        self.assertIn("timeout", r.text())
        self.unchanged()

    def signal_when(self, argv, ready, sig=signal.SIGINT):
        """Runs zstor argv, sends sig once ready() is true (the command is under way)."""
        p = subprocess.Popen([zstor_binary(), "-c"] + argv, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            while not ready() and p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            p.send_signal(sig)
            out, err = p.communicate(timeout=300)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        return p.returncode, out, err.decode("utf-8", "replace")

    def test_interrupted_store_and_retrieve_leave_nothing(self):
        # Ctrl-C (or SIGTERM) in the middle of a store: the shards already written are
        # deleted again (they used to stay, referenced by nothing); in the middle of a
        # retrieve: no partial or temporary output file
        fake = FakeZdb()
        self.addCleanup(fake.close)
        data = list(self.c.data)
        data[0] = type("B", (), {"address": fake.address, "ns": fake.ns, "kind": "zdb",
                                 "group": data[0].group})()
        cfg = self.c.write_config(path=os.path.join(self.c.tmp, "fake.toml"), data=data)
        big = self.c.write("in/big.bin", os.urandom(12 * 1024 * 1024))
        fake.set_delay = 0.25  # 12 chunks: a few seconds of store
        rc, _, err = self.signal_when([cfg, "store", "-f", big], lambda: fake.sets >= 2)
        self.assertEqual(rc, 1, err)
        self.assertIn("interrupted", err)
        self.assertIn("deleted again", err)
        self.assertEqual(fake.entries(), 0)
        self.unchanged()
        fake.set_delay = 0
        self.assertOk(self.c.zstor("store", "-f", big, config=cfg))
        self.before = self.c.entries()
        self.c.data[1].kill()  # the slow fake is then needed for every chunk
        self.c.data[2].kill()
        fake.get_delay = 0.5
        out = os.path.join(self.c.tmp, "out", "big.bin")
        rc, _, err = self.signal_when([cfg, "retrieve", "-f", big, "-o", out],
                                      lambda: fake.gets >= 1, signal.SIGTERM)
        self.assertEqual(rc, 1, err)
        self.assertIn("interrupted", err)
        self.assertEqual(os.listdir(os.path.dirname(out)), [])
        self.unchanged()

    def test_cancel_reaches_the_network(self):
        # Ctrl-C while a SET hangs on a backend (default 30 s request timeout, 3 retries):
        # the store stops within a bound instead of waiting the request out
        fake = FakeZdb()
        self.addCleanup(fake.close)
        data = list(self.c.data)
        data[0] = type("B", (), {"address": fake.address, "ns": fake.ns, "kind": "zdb",
                                 "group": data[0].group})()
        cfg = self.c.write_config(path=os.path.join(self.c.tmp, "hang.toml"), data=data,
                                  extra="")
        big = self.c.write("in/hang.bin", os.urandom(4 * 1024 * 1024))
        fake.set_delay = 60
        t0 = time.monotonic()
        sent = []

        def ready():
            if fake.sets_started >= 1 and not sent:
                sent.append(time.monotonic())
            return bool(sent)

        rc, _, err = self.signal_when([cfg, "store", "-f", big], ready)
        took = time.monotonic() - sent[0] if sent else time.monotonic() - t0
        self.assertEqual(rc, 1, err)
        self.assertIn("interrupted", err)
        self.assertLess(took, 15, "the store went on %.1f s after Ctrl-C" % took)
        fake.set_delay = 0
        self.unchanged()

    def test_list_without_scan(self):
        # metadata servers without SCAN (a zdb that has no key listing): store and
        # retrieve work, list says why it cannot
        fakes = [FakeZdb(mode="userkey") for _ in self.c.meta]
        for f in fakes:
            self.addCleanup(f.close)
        meta = [type("B", (), {"address": f.address, "ns": f.ns, "kind": "zdb"})()
                for i, f in enumerate(fakes)]
        cfg = self.c.write_config(path=os.path.join(self.c.tmp, "noscan.toml"), meta=meta)
        self.assertOk(self.c.zstor("store", "-f", self.new, config=cfg))
        self.assertEqual([f.entries() for f in fakes], [2] * 4)  # the record and its done marker
        r = self.c.zstor("retrieve", "-f", self.new, "-o", "-", config=cfg)
        self.assertOk(r)
        r = self.c.zstor("list", config=cfg)
        self.assertFails(r, "list", "listing names is not supported", "Command not supported")

    def test_full_namespace_before_placement(self):
        b = self.c.data[3]
        b.cmd("NSSET", b.ns, "maxsize", str(10000))
        r = self.c.zstor("store", "-f", self.new)
        line = self.assertFails(r, "store", "new.bin", b.ns)
        self.assertIn("full", line)
        self.unchanged()

    def test_full_namespace_during_the_store(self):
        # a backend that accepts the first shards, then is full: the shards already
        # written everywhere are deleted again
        fake = FakeZdb(full_after=2)
        self.addCleanup(fake.close)
        data = list(self.c.data)
        data[0] = type("B", (), {"address": fake.address, "ns": fake.ns, "kind": "zdb",
                                 "group": data[0].group})()
        cfg = self.c.write_config(path=os.path.join(self.c.tmp, "fake.toml"), data=data)
        big = self.c.write("in/big.bin", os.urandom(5 * 1024 * 1024))
        r = self.c.zstor("store", "-f", big, config=cfg)
        self.assertFails(r, "store", "big.bin", fake.address, "No space left")
        self.assertEqual(fake.sets, 2)
        self.assertEqual(fake.entries(), 0)
        self.unchanged()
        # and the same backend works while it has room
        fake.full_after = None
        self.assertOk(self.c.zstor("store", "-f", big, config=cfg))
        self.assertEqual(fake.entries(), 5)

    def test_read_only_namespaces(self):
        # a public namespace with a password the config does not give reads fine but
        # takes no writes; a locked one neither: not placed on (the store used to upload
        # to it, fail with "read-only mode" and undo), a store refused up front
        b = self.c.data[4]
        self.assertEqual(b.cmd("NSSET", b.ns, "password", "secret"), "OK")
        r = self.c.zstor("store", "-f", self.new)
        self.assertFails(r, "store", "new.bin", b.ns, "read-only", "password")
        r = self.c.zstor("test")
        self.assertEqual(r.rc, 1, repr(r))
        self.assertIn("data backend %s/%s: read-only" % (b.address, b.ns), r.err)
        r = self.c.zstor("status")
        self.assertOk(r)
        self.assertRegex(r.text(), r"%s/%s +read-only" % (b.address, b.ns))
        r = self.c.zstor("retrieve", "-f", self.file, "-o", "-")
        self.assertOk(r)  # reading from it works
        self.unchanged()
        self.assertEqual(b.cmd("NSSET", b.ns, "password", "*"), "OK")
        m = self.c.meta[2]
        self.assertEqual(m.cmd("NSSET", m.ns, "lock", "1"), "OK")
        r = self.c.zstor("store", "-f", self.new)
        self.assertFails(r, "store", "new.bin", "refused", m.ns, "locked")
        self.unchanged()
        self.assertEqual(m.cmd("NSSET", m.ns, "lock", "0"), "OK")
        self.assertOk(self.c.zstor("store", "-f", self.new))

    def test_file_outside_root(self):
        out = os.path.join(self.c.tmp, "outside.bin")
        with open(out, "wb") as f:
            f.write(b"outside")
        r = self.c.zstor("store", "-f", out)
        self.assertFails(r, "store", "outside.bin", "outside root", self.c.root)
        r = self.c.zstor("check", "-f", out)
        self.assertFails(r, "check", "outside root")
        self.unchanged()

    def test_meta_backend_down(self):
        self.c.meta[1].kill()
        r = self.c.zstor("store", "-f", self.new)
        self.assertFails(r, "store", "new.bin", "meta backend not usable", self.c.meta[1].address)
        self.unchanged()

    def test_missing_file_and_not_stored(self):
        r = self.c.zstor("store", "-f", self.c.path("in/none"))
        self.assertFails(r, "store", "in/none", "No such file")
        r = self.c.zstor("retrieve", "-f", self.c.path("in/none"))
        self.assertFails(r, "retrieve", "in/none", "not stored")
        r = self.c.zstor("check", "-f", self.new)
        self.assertOk(r)
        self.assertEqual(r.out, b"")
        self.unchanged()

    def test_save_failure_and_error_on_failure(self):
        c = self.c
        for name, size in (("a", 100), ("b", 600000), ("c", 100)):
            c.write("dir/%s" % name, os.urandom(size))
        for b in c.data:  # "b" needs more than is left; "a" and "c" fit
            info = b.cmd("NSINFO", b.ns).decode()
            used = int([l for l in info.split("\n") if l.startswith("data_size_bytes")][0].split(": ")[1])
            b.cmd("NSSET", b.ns, "maxsize", str(used + 50000))
        r = c.zstor("store", "-e", "-s", "-f", c.path("dir"))
        self.assertEqual(r.rc, 1, repr(r))
        lines = [l for l in r.err.splitlines() if l.startswith("zstor: ")]
        self.assertIn("dir/b", lines[0])
        self.assertIn("stopped at the first failure", lines[-1])
        self.assertEqual(c.zstor("check", "-f", c.path("dir/c")).out, b"")  # not reached
        self.assertNotEqual(c.zstor("check", "-f", c.path("dir/a")).out, b"")
        # --save-failure left a record under /prefix/failures/ on every meta backend
        for m in c.meta:
            keys = m.cmd("SCAN")[1]
            self.assertTrue(any(k[0].startswith(b"/zstortest/failures/") for k in keys), keys)
        # without -e the directory goes on past the failure
        r = c.zstor("store", "-f", c.path("dir"))
        self.assertEqual(r.rc, 1, repr(r))
        self.assertIn("1 of 3 files failed", r.err)
        self.assertNotEqual(c.zstor("check", "-f", c.path("dir/c")).out, b"")


class Usage(ZstorTestCase):
    def run_bare(self, *args):
        import subprocess
        p = subprocess.run([zstor_binary()] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        return p.returncode, p.stderr.decode()

    def test_usage_errors_exit_2(self):
        for args in ((), ("frobnicate",), ("store",), ("retrieve", "-x"), ("rebuild",),
                     ("rebuild", "-f", "a", "-k", "b"), ("check", "-f", "a", "extra"),
                     ("list", "a", "b")):
            rc, err = self.run_bare(*args)
            self.assertEqual(rc, 2, (args, err))
            self.assertIn("usage: zstor", err)

    def test_flag_errors_name_the_flag_in_one_line(self):
        # getopt's own messages ("invalid option -- 'x'" with the binary's path) are off
        for args, line in ((("store", "-x"), "zstor: store: unknown flag '-x'"),
                           (("retrieve", "-f", "a", "-o"), "zstor: retrieve: -o needs a value"),
                           (("status", "--bogus"), "zstor: status: unknown flag '--bogus'"),
                           (("list", "--long=3"), "zstor: list: --long takes no value"),
                           (("check", "--file"), "zstor: check: --file needs a value"),
                           (("-c",), "zstor: -c needs a value"),
                           (("--nope", "status"), "zstor: unknown flag '--nope'")):
            rc, err = self.run_bare(*args)
            self.assertEqual(rc, 2, (args, err))
            lines = err.splitlines()
            self.assertEqual(lines[0], line, (args, err))
            self.assertEqual(lines[1][:12], "usage: zstor", (args, err))
            self.assertEqual([l for l in lines if l.startswith("zstor")], [line], (args, err))

    def test_daemon_commands_say_so(self):
        rc, err = self.run_bare("monitor")
        self.assertEqual(rc, 1)
        self.assertIn("error: monitor: zstor_config.toml: cannot open", err)
        rc, err = self.run_bare("store", "-n", "-f", "/x")
        self.assertEqual(rc, 1)
        self.assertIn("needs the daemon", err)


if __name__ == "__main__":
    zstortest.main()
