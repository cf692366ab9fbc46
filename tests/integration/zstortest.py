"""Harness for the zstor integration tests (Python 3 standard library only).

- Cluster: N real zdb servers (zdbtest.Zdb, one process per backend so that a backend can
  be killed on its own), a data namespace per data backend (NSSET mode seq) and a meta
  namespace per meta backend (user mode), or dir:// share directories instead; writes a
  zstor config for them and runs <build>/zstor/zstor with it.
- FakeServer: a TCP server in a thread that answers anything with garbage; SilentServer
  never answers.
- main(): as zdbtest.main(), also checks that the zstor binary exists.

Every process is stopped by its PID; every wait is bounded.
"""

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import zdbtest
from zdbtest import Zdb

ZSTOR_TIMEOUT = 300.0  # seconds for one zstor command (ASan is slow)


def zstor_binary():
    env = os.environ.get("ZSTOR_BIN")
    if env:
        return os.path.abspath(env)
    return os.path.normpath(os.path.join(os.path.dirname(zdbtest.zdb_binary()), "..", "zstor", "zstor"))


def sanitized():
    """True when the zstor binary is built with AddressSanitizer (slower: tests shrink)."""
    if os.environ.get("QSFS_SANITIZE"):
        return True
    try:
        with open(zstor_binary(), "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


def b2(data):
    """BLAKE2b-128 hex, as zstor check prints it."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def key_hex():
    return os.urandom(32).hex()


class Result:
    def __init__(self, argv, proc):
        self.argv = argv
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr.decode("utf-8", "replace")

    def text(self):
        return self.out.decode("utf-8", "replace")

    def __repr__(self):
        return "zstor %s -> %d\nstdout: %r\nstderr: %s" % (
            " ".join(self.argv), self.rc, self.out[:400], self.err[-3000:])


class Backend:
    """One meta or data backend: a zdb process with one namespace, or a dir:// path."""

    def __init__(self, role, index, group=None, tmp=None, kind="zdb", token=""):
        self.role = role
        self.index = index
        self.group = group
        self.kind = kind
        # unique per cluster: a port freed by a killed server and taken by another test's
        # server must not lead zstor into that test's namespace
        self.ns = "%s%d%s" % ("m" if role == "meta" else "d", index, token)
        self.zdb = None
        self.dir = None
        self.alive = True
        if kind == "zdb":
            self.zdb = Zdb(tmpdir=tempfile.mkdtemp(prefix="zst-%s-" % self.ns, dir=tmp))
        else:
            self.dir = os.path.join(tmp, "share-%s" % self.ns)

    def start(self):
        if self.zdb is None:
            return
        self.zdb.keep_port = self.zdb.port is not None  # a restart: the config names the port
        self.zdb.start()
        with self.zdb.client() as c:
            self.alive = True
            if c.cmd("NSNEW", self.ns) != "OK":  # a restart: the namespace is there
                return
            if self.role == "data":
                assert c.cmd("NSSET", self.ns, "mode", "seq") == "OK"

    @property
    def address(self):
        if self.zdb is not None:
            return "127.0.0.1:%d" % self.zdb.port
        return "dir://" + self.dir

    def client(self):
        c = self.zdb.client()
        c.cmd("SELECT", self.ns)
        return c

    def cmd(self, *args):
        with self.client() as c:
            return c.cmd(*args)

    def kill(self):
        """Gone for good: a zdb is killed with SIGKILL, a directory is moved away."""
        if self.zdb is not None:
            self.zdb.kill9()
        else:
            os.rename(self.dir, self.dir + ".gone")
        self.alive = False

    def entries(self):
        """Live values in the namespace (or files in the share directory)."""
        if self.zdb is not None:
            info = zdbtest.info_dict(self.cmd("NSINFO", self.ns))
            return int(info["entries"])
        sub = "named" if self.role == "meta" else "data"
        n = 0
        for _, _, files in os.walk(os.path.join(self.dir, sub)):
            n += len(files)
        return n

    def root(self):
        return self.zdb.tmpdir if self.zdb is not None else self.dir

    def files(self):
        out = []
        for d, _, files in os.walk(self.root()):
            for f in files:
                out.append(os.path.join(d, f))
        return out

    def cleanup(self):
        if self.zdb is not None:
            self.zdb.cleanup()


class Cluster:
    """Meta and data backends, a config for them, and the zstor binary."""

    def __init__(self, meta=4, groups=(2, 2, 2), k=4, n=6, rg=1, rn=0, kind="zdb",
                 tmp=None, extra=""):
        self.tmp = tempfile.mkdtemp(prefix="zstortest-", dir=tmp)
        self.root = os.path.join(self.tmp, "root")
        os.makedirs(self.root)
        token = "-" + os.urandom(4).hex()
        self.meta = [Backend("meta", i, tmp=self.tmp, kind=kind, token=token) for i in range(meta)]
        self.data = []
        for g, size in enumerate(groups):
            for _ in range(size):
                self.data.append(Backend("data", len(self.data), group=g, tmp=self.tmp, kind=kind,
                                         token=token))
        self.k, self.n, self.rg, self.rn = k, n, rg, rn
        self.data_key = key_hex()
        self.meta_key = key_hex()
        self.extra = extra
        threads = [threading.Thread(target=b.start) for b in self.meta + self.data]
        errors = []
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for b in self.meta + self.data:
            if b.zdb is not None and not b.zdb.running():
                errors.append(b.ns)
        if errors:
            self.cleanup()
            raise RuntimeError("backends did not start: %s" % errors)
        self.config = os.path.join(self.tmp, "zstor.toml")
        self.write_config()

    def config_text(self, data_key=None, meta_key=None, drop=None, data=None, meta=None,
                    extra=None):
        data_key = data_key or self.data_key
        meta_key = meta_key or self.meta_key
        lines = [
            "minimal_shards = %d" % self.k,
            "expected_shards = %d" % self.n,
            "redundant_groups = %d" % self.rg,
            "redundant_nodes = %d" % self.rn,
            'root = "%s"' % self.root,
            extra if extra is not None else self.extra,
            "[encryption]",
            'algorithm = "AES"',
            'key = "%s"' % data_key,
            "[compression]",
            'algorithm = "snappy"',
            "[meta]",
            'type = "zdb"',
            "[meta.config]",
            'prefix = "zstortest"',
            "[meta.config.encryption]",
            'algorithm = "AES"',
            'key = "%s"' % meta_key,
        ]
        for b in meta if meta is not None else self.meta:
            lines += ["[[meta.config.backends]]", 'address = "%s"' % b.address]
            if b.kind == "zdb":
                lines.append('namespace = "%s"' % b.ns)
        groups = {}
        for b in data if data is not None else self.data:
            groups.setdefault(b.group, []).append(b)
        for g in sorted(groups):
            lines.append("[[groups]]")
            for b in groups[g]:
                lines += ["[[groups.backends]]", 'address = "%s"' % b.address]
                if b.kind == "zdb":
                    lines.append('namespace = "%s"' % b.ns)
        text = "\n".join(lines) + "\n"
        if drop:
            text = "\n".join(l for l in text.split("\n") if not l.startswith(drop)) + "\n"
        return text

    def write_config(self, path=None, **kw):
        path = path or self.config
        with open(path, "w") as f:
            f.write(self.config_text(**kw))
        return path

    def zstor(self, *args, config=None, timeout=ZSTOR_TIMEOUT, stdin=None, cwd=None):
        argv = ["-c", config or self.config] + list(args)
        proc = subprocess.run([zstor_binary()] + argv, stdin=subprocess.DEVNULL if stdin is None else stdin,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, cwd=cwd)
        res = Result(argv, proc)
        for m in zdbtest.SANITIZER_MARKERS:
            if m in res.err:
                raise AssertionError("sanitizer report from zstor:\n%s" % res.err[-8000:])
        return res

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def write(self, rel, data):
        p = self.path(rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def entries(self):
        """(role, index) -> live entries, for every backend still alive."""
        return {(b.role, b.index): b.entries() for b in self.meta + self.data if b.alive}

    def backend_files(self):
        out = []
        for b in self.meta + self.data:
            out += b.files()
        return out

    def cleanup(self):
        errors = []
        for b in self.meta + self.data:
            try:
                b.cleanup()
            except AssertionError as e:
                errors.append(str(e))
        if not os.environ.get("ZDB_KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)
        if errors:
            raise AssertionError("\n".join(errors))


class FakeServer:
    """Accepts connections on 127.0.0.1 and answers every read with garbage."""

    def __init__(self, reply=b"HTTP/1.1 400 Bad Request\r\n\r\n\x00\xff garbage"):
        self.reply = reply
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def _serve(self, conn):
        conn.settimeout(2.0)
        try:
            while not self.stop:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(self.reply)
        except OSError:
            pass
        finally:
            conn.close()

    def _run(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()


class SilentServer(FakeServer):
    """Accepts connections and never answers (a hung or stopped server): every byte sent
    to it is read and dropped, the connection stays open until close()."""

    def __init__(self):
        super().__init__(reply=b"")

    def _serve(self, conn):
        conn.settimeout(0.2)
        try:
            while not self.stop:
                try:
                    if not conn.recv(65536):
                        break
                except socket.timeout:
                    continue
        except OSError:
            pass
        finally:
            conn.close()


class FakeZdb(FakeServer):
    """A minimal zdb speaking RESP: one namespace in memory (SELECT, NSINFO, PING, SET,
    GET, DEL; no SCAN: "Command not supported"), sequential or userkey. After `full_after`
    SETs it answers "No space left on this namespace", as a namespace that fills up
    during a store; GETs and SETs can be made slow."""

    def __init__(self, full_after=None, mode="sequential"):
        self.mode = mode  # "userkey" for a metadata namespace (SET takes the key)
        self.ns = "fake-" + os.urandom(4).hex()  # the only namespace SELECT accepts
        self.values = {}
        self.next_id = 0
        self.sets = 0
        self.full_after = full_after
        self.get_delay = 0.0  # seconds each GET waits before its reply (a slow backend)
        self.set_delay = 0.0  # the same for SET
        self.gets = 0  # GETs received
        self.sets_started = 0  # SETs received (counted before their delay)
        self.lock = threading.Lock()
        super().__init__()

    def entries(self):
        with self.lock:
            return len(self.values)

    def _reply(self, args):
        cmd = args[0].upper() if args else b""
        if cmd == b"GET":
            with self.lock:
                self.gets += 1
        if cmd == b"GET" and self.get_delay:
            time.sleep(self.get_delay)
        if cmd == b"SET":
            with self.lock:
                self.sets_started += 1  # before the delay: a SET under way
        if cmd == b"SET" and self.set_delay:
            time.sleep(self.set_delay)
        with self.lock:
            if cmd == b"PING":
                return b"+PONG\r\n"
            if cmd == b"SELECT":
                ok = len(args) >= 2 and args[1] == self.ns.encode()
                return b"+OK\r\n" if ok else b"-Namespace not found\r\n"
            if cmd == b"NSINFO":
                used = sum(len(v) for v in self.values.values())
                text = ("# namespace\nname: fake\nentries: %d\npublic: yes\nworm: no\n"
                        "locked: no\npassword: no\ndata_size_bytes: %d\ndata_limits_bytes: 0\n"
                        "index_size_bytes: 0\nmode: %s\n" % (len(self.values), used, self.mode)).encode()
                return b"$%d\r\n%s\r\n" % (len(text), text)
            if cmd == b"SET" and len(args) == 3:
                if self.full_after is not None and self.sets >= self.full_after:
                    return b"-No space left on this namespace\r\n"
                self.sets += 1
                if self.mode == "userkey":
                    self.values[args[1]] = args[2]
                    return b"$%d\r\n%s\r\n" % (len(args[1]), args[1])
                key = self.next_id.to_bytes(8, "little")
                self.next_id += 1
                self.values[key] = args[2]
                return b"$8\r\n" + key + b"\r\n"
            if cmd == b"GET" and len(args) == 2:
                v = self.values.get(args[1])
                return b"$-1\r\n" if v is None else b"$%d\r\n%s\r\n" % (len(v), v)
            if cmd == b"DEL" and len(args) == 2:
                if self.values.pop(args[1], None) is None:
                    return b"-Key not found\r\n"
                return b"+OK\r\n"
        return b"-Command not supported\r\n"

    def _serve(self, conn):
        conn.settimeout(5.0)
        buf = b""
        try:
            while not self.stop:
                data = conn.recv(1 << 20)
                if not data:
                    break
                buf += data
                out = []
                while True:
                    try:
                        args, n = _parse_command(buf)
                    except ValueError:
                        break
                    buf = buf[n:]
                    out.append(self._reply(args))
                if out:
                    conn.sendall(b"".join(out))
        except OSError:
            pass
        finally:
            conn.close()


def _parse_command(buf):
    """One RESP array of bulk strings from buf: (args, bytes used); ValueError if incomplete."""
    if not buf.startswith(b"*"):
        raise ValueError
    end = buf.find(b"\r\n")
    if end < 0:
        raise ValueError
    n = int(buf[1:end])
    pos = end + 2
    args = []
    for _ in range(n):
        end = buf.find(b"\r\n", pos)
        if end < 0 or buf[pos:pos + 1] != b"$":
            raise ValueError
        ln = int(buf[pos + 1:end])
        start = end + 2
        if len(buf) < start + ln + 2:
            raise ValueError
        args.append(buf[start:start + ln])
        pos = start + ln + 2
    return args, pos


class ZstorTestCase(unittest.TestCase):
    def new_cluster(self, **kw):
        c = Cluster(**kw)
        self.addCleanup(c.cleanup)
        return c

    def assertOk(self, res):
        self.assertEqual(res.rc, 0, repr(res))

    def assertFails(self, res, *needles, rc=1):
        """Exit rc, and the failure is one line on stderr naming every needle."""
        self.assertEqual(res.rc, rc, repr(res))
        errors = [l for l in res.err.splitlines() if l.startswith("zstor: ") and "warning:" not in l]
        self.assertEqual(len(errors), 1, "expected one error line:\n%s" % res.err)
        for n in needles:
            self.assertIn(n, errors[0], repr(res))
        return errors[0]


def main():
    global_build = None
    for i, a in enumerate(sys.argv):
        if a == "--build" and i + 1 < len(sys.argv):
            global_build = sys.argv[i + 1]
    zdbtest.BUILD_DIR = global_build
    path = zstor_binary()
    if not os.access(path, os.X_OK):
        print("zstor binary not found: %s" % path, file=sys.stderr)
        print("SUMMARY %s: FAILED (zstor binary not found)" % os.path.basename(sys.argv[0]))
        sys.exit(1)
    zdbtest.main()
