"""Harness for the zdb integration tests (Python 3 standard library only).

- Zdb: starts the real zdb binary on 127.0.0.1 with a free port and a private
  temporary directory (index/ and data/ inside), waits until it answers, stops it
  by PID (SIGTERM, bounded wait, then SIGKILL), can kill -9 it and restart it on the
  same directories.
- Client: a raw RESP2 client over TCP or a unix socket. cmd() returns parsed replies:
  str for +status, RespError for -error (returned, not raised), int for :integer,
  bytes for a bulk string, None for a nil bulk or nil array, list for an array.
- main(): the entry point of every test file: `python3 test_x.py --build DIR`.

The binary is <build>/zdb/zdb, where <build> comes from --build (ctest passes the
build directory) or defaults to <repo>/build; the ZDB_BIN environment variable
overrides both. Set ZDB_KEEP=1 to keep the temporary directories for inspection.

Every wait in here is bounded in time. Processes are only ever stopped by their PID.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Filled by main() from --build; None means <repo>/build.
BUILD_DIR = None

START_TIMEOUT = 15.0  # seconds for the server to accept connections (ASan is slow)
STOP_TIMEOUT = 15.0  # seconds between SIGTERM and SIGKILL
REPLY_TIMEOUT = 20.0  # default seconds to wait for one reply

MAX_PAYLOAD = 8 * 1024 * 1024


class ZdbNotFound(Exception):
    pass


class ZdbStartError(Exception):
    pass


class ConnectionClosed(Exception):
    """The server closed the connection before a complete reply arrived."""


def zdb_binary():
    """Path of the zdb binary to test (may not exist)."""
    env = os.environ.get("ZDB_BIN")
    if env:
        return os.path.abspath(env)
    build = BUILD_DIR
    if build is None:
        build = os.path.join(REPO_ROOT, "build")
    elif not os.path.isabs(build):
        cand = os.path.abspath(build)
        if not os.path.isdir(cand):
            cand = os.path.join(REPO_ROOT, build)
        build = cand
    return os.path.join(build, "zdb", "zdb")


def faults_binary():
    """The test build with fault switches (zdb-faults, next to zdb)."""
    return os.path.join(os.path.dirname(zdb_binary()), "zdb-faults")


def require_binary(path=None):
    path = path or zdb_binary()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise ZdbNotFound("zdb binary not found: %s (build it, pass --build DIR or set ZDB_BIN)" % path)
    return path


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def le64(n):
    """8-byte little-endian sequential id."""
    return int(n).to_bytes(8, "little")


# ---------------------------------------------------------------------------
# RESP
# ---------------------------------------------------------------------------


class RespError:
    """An error reply (-text). Compared by its text."""

    __slots__ = ("text",)

    def __init__(self, text):
        self.text = text

    def __eq__(self, other):
        if isinstance(other, RespError):
            return self.text == other.text
        return NotImplemented

    def __ne__(self, other):
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    def __hash__(self):
        return hash(self.text)

    def __repr__(self):
        return "RespError(%r)" % self.text


def _to_bytes(arg):
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, (bytearray, memoryview)):
        return bytes(arg)
    if isinstance(arg, int):
        return str(arg).encode()
    return str(arg).encode()


def encode_command(*args):
    """RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = _to_bytes(a)
        parts.append(b"$%d\r\n" % len(b))
        parts.append(b)
        parts.append(b"\r\n")
    return b"".join(parts)


class _Incomplete(Exception):
    pass


class ProtocolViolation(Exception):
    """The server sent bytes that are not valid RESP2."""


def _parse(buf, pos):
    """Parse one reply at buf[pos:]; returns (value, newpos) or raises _Incomplete."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete()
    kind = buf[pos : pos + 1]
    line = bytes(buf[pos + 1 : end])
    nxt = end + 2
    if kind == b"+":
        return line.decode("utf-8", "replace"), nxt
    if kind == b"-":
        return RespError(line.decode("utf-8", "replace")), nxt
    if kind == b":":
        try:
            return int(line), nxt
        except ValueError:
            raise ProtocolViolation("bad integer reply %r" % line)
    if kind == b"$":
        try:
            n = int(line)
        except ValueError:
            raise ProtocolViolation("bad bulk length %r" % line)
        if n < 0:
            return None, nxt
        if len(buf) < nxt + n + 2:
            raise _Incomplete()
        if buf[nxt + n : nxt + n + 2] != b"\r\n":
            raise ProtocolViolation("bulk not terminated by CRLF")
        return bytes(buf[nxt : nxt + n]), nxt + n + 2
    if kind == b"*":
        try:
            n = int(line)
        except ValueError:
            raise ProtocolViolation("bad array length %r" % line)
        if n < 0:
            return None, nxt
        items = []
        p = nxt
        for _ in range(n):
            v, p = _parse(buf, p)
            items.append(v)
        return items, p
    raise ProtocolViolation("unknown reply type %r in %r" % (kind, bytes(buf[pos : pos + 40])))


class Client:
    """Raw RESP2 client. Use port= for TCP on 127.0.0.1 or unix= for a unix socket."""

    def __init__(self, port=None, unix=None, timeout=REPLY_TIMEOUT, connect_timeout=5.0):
        family = socket.AF_UNIX if unix is not None else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.sock.settimeout(connect_timeout)
            if unix is not None:
                self.sock.connect(unix)
            else:
                self.sock.connect(("127.0.0.1", port))
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except BaseException:
            self.sock.close()
            raise
        self.timeout = timeout
        self.buf = bytearray()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data):
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def send_command(self, *args):
        self.send_raw(encode_command(*args))

    def _try_parse(self):
        try:
            value, pos = _parse(self.buf, 0)
        except _Incomplete:
            return False, None
        del self.buf[:pos]
        return True, value

    def read_reply(self, timeout=None):
        """Next reply. Raises socket.timeout / ConnectionClosed; never waits forever."""
        if timeout is None:
            timeout = self.timeout
        deadline = time.monotonic() + timeout
        while True:
            ok, value = self._try_parse()
            if ok:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("no complete reply within %.1fs (have %d bytes: %r)" % (timeout, len(self.buf), bytes(self.buf[:80])))
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(1 << 20)
            except (ConnectionResetError, BrokenPipeError) as e:
                raise ConnectionClosed("connection reset while waiting for a reply: %s" % e)
            if not data:
                raise ConnectionClosed("connection closed while waiting for a reply (have %d bytes: %r)" % (len(self.buf), bytes(self.buf[:80])))
            self.buf += data

    def cmd(self, *args, timeout=None):
        self.send_command(*args)
        return self.read_reply(timeout)

    def pipeline(self, commands, timeout=None):
        """Send all commands in one write, then read one reply per command, in order."""
        self.send_raw(b"".join(encode_command(*c) for c in commands))
        return [self.read_reply(timeout) for _ in commands]

    def is_closed(self, timeout=5.0):
        """True when the server closes the connection within timeout (pending data is kept)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            except OSError:
                return True
            if not data:
                return True
            self.buf += data


# ---------------------------------------------------------------------------
# Server process
# ---------------------------------------------------------------------------

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:", "ERROR: UndefinedBehaviorSanitizer")


class Zdb:
    """One zdb server process with its own temporary index and data directories."""

    def __init__(self, args=(), unix=False, tmpdir=None, binary=None):
        self.binary = require_binary(binary)
        self.args = list(args)
        self.unix = unix
        self.own_tmp = tmpdir is None
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix="zdbtest-")
        self.index_dir = os.path.join(self.tmpdir, "index")
        self.data_dir = os.path.join(self.tmpdir, "data")
        os.makedirs(self.index_dir, exist_ok=True)
        os.makedirs(self.data_dir, exist_ok=True)
        self.socket_path = os.path.join(self.tmpdir, "zdb.sock") if unix else None
        self.proc = None
        self.port = None
        self.generation = 0
        self.unexpected_exit = None  # (returncode, stderr tail) when it died on its own
        self.log_path = None
        self.env = None  # environment of the process (None: this one's)
        self.preexec = None  # run in the child before exec (e.g. resource limits)
        self.keep_port = False  # a restart listens on the port of the last start

    # -- paths -------------------------------------------------------------
    def ns_index_dir(self, ns="default"):
        return os.path.join(self.index_dir, ns)

    def ns_data_dir(self, ns="default"):
        return os.path.join(self.data_dir, ns)

    def index_file(self, n, ns="default"):
        return os.path.join(self.index_dir, ns, "i%d" % n)

    def data_file(self, n, ns="default"):
        return os.path.join(self.data_dir, ns, "d%d" % n)

    # -- lifecycle ---------------------------------------------------------
    def command_line(self):
        argv = [self.binary, "--listen", "127.0.0.1", "--port", str(self.port),
                "--data", self.data_dir, "--index", self.index_dir]
        if self.unix:
            argv += ["--socket", self.socket_path]
        return argv + self.args

    def _spawn(self):
        self.generation += 1
        if not (self.keep_port and self.port):
            self.port = free_port()
        if self.unix and os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        self.log_path = os.path.join(self.tmpdir, "zdb-%d.log" % self.generation)
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(self.command_line(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.tmpdir, env=self.env,
                                         preexec_fn=self.preexec)
        finally:
            log.close()

    def log_text(self, limit=6000):
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            data = f.read()
        text = data.decode("utf-8", "replace")
        return text[-limit:]

    def _probe(self):
        """True when the server answers PING."""
        try:
            if self.unix:
                c = Client(unix=self.socket_path, timeout=2.0, connect_timeout=0.5)
            else:
                c = Client(port=self.port, timeout=2.0, connect_timeout=0.5)
        except OSError:
            return False
        try:
            return c.cmd("PING", timeout=2.0) == "PONG"
        except (OSError, ConnectionClosed, ProtocolViolation):
            return False
        finally:
            c.close()

    def _listening(self):
        """True when our process says it listens (the port answered may be another
        server's: free_port() races with parallel tests). Without a log on stdout
        (--logfile, --background) the probe alone decides."""
        if any(a in self.args for a in ("--logfile", "--background")) or self.unix:
            return True
        return ("pid %d" % self.proc.pid) in self.log_text(limit=1 << 16)

    def start(self, args=None, timeout=START_TIMEOUT):
        """Start the server (args replaces the extra arguments when given)."""
        if args is not None:
            self.args = list(args)
        if self.running():
            raise RuntimeError("zdb already running")
        for attempt in range(3):
            self._spawn()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if self._probe() and self._listening():
                    self.unexpected_exit = None
                    return self
                time.sleep(0.02)
            if self.proc.poll() is None:
                self._terminate()
                self.proc = None
                raise ZdbStartError("zdb did not accept connections within %.0fs; output:\n%s" % (timeout, self.log_text()))
            rc = self.proc.returncode
            self.proc = None
            text = self.log_text()
            # a port taken between free_port() and bind(): try another one
            if "in use" in text.lower() and attempt < 2:
                continue
            raise ZdbStartError("zdb exited during start-up with status %s; output:\n%s" % (rc, text))
        raise ZdbStartError("zdb could not start")

    def start_expect_failure(self, args=None, timeout=START_TIMEOUT):
        """Start with args and expect the process to exit by itself; returns (returncode, output)."""
        if args is not None:
            self.args = list(args)
        self._spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                return rc, self.log_text()
            if self._probe():
                self._terminate()
                self.proc = None
                raise AssertionError("zdb started and served requests although it should have refused: %r" % self.args)
            time.sleep(0.02)
        self._terminate()
        self.proc = None
        raise AssertionError("zdb neither exited nor served within %.0fs: %r" % (timeout, self.args))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _terminate(self):
        """SIGTERM, bounded wait, then SIGKILL. Returns the exit status."""
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=STOP_TIMEOUT)
        return proc.returncode

    def check_alive(self):
        """Raise AssertionError if the server died on its own."""
        if self.proc is not None and self.proc.poll() is not None:
            self.unexpected_exit = (self.proc.returncode, self.log_text())
            rc, text = self.unexpected_exit
            self.proc = None
            raise AssertionError("zdb died unexpectedly with status %s; output:\n%s" % (rc, text))

    def check_sanitizers(self):
        text = self.log_text(200000)
        for m in SANITIZER_MARKERS:
            if m in text:
                raise AssertionError("sanitizer report in zdb output:\n%s" % text[-8000:])

    def stop(self):
        """Graceful stop (SIGTERM). Returns the exit status (128+15 expected, as -15 never)."""
        self.check_alive()
        rc = self._terminate()
        self.proc = None
        self.check_sanitizers()
        return rc

    def kill9(self):
        """SIGKILL the server (simulated crash) and reap it."""
        self.check_alive()
        proc = self.proc
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=STOP_TIMEOUT)
        self.proc = None
        self.check_sanitizers()

    def restart(self, args=None, kill=False):
        """Stop (or kill -9) and start again on the same directories."""
        if self.proc is not None:
            if kill:
                self.kill9()
            else:
                self.stop()
        return self.start(args=args)

    def cleanup(self):
        """Stop if running and remove the temporary directory. Raises if it had died."""
        died = None
        if self.proc is not None:
            if self.proc.poll() is not None:
                died = (self.proc.returncode, self.log_text())
            self._terminate()
            self.proc = None
        sanitizer = None
        try:
            self.check_sanitizers()
        except AssertionError as e:
            sanitizer = e
        if self.own_tmp and not os.environ.get("ZDB_KEEP"):
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        if died is not None:
            raise AssertionError("zdb died unexpectedly with status %s; output:\n%s" % died)
        if sanitizer is not None:
            raise sanitizer

    # -- clients -------------------------------------------------------------
    def client(self, timeout=REPLY_TIMEOUT):
        if self.unix:
            return Client(unix=self.socket_path, timeout=timeout)
        return Client(port=self.port, timeout=timeout)


class ZdbTestCase(unittest.TestCase):
    """Base class: new_zdb() starts a server that is cleaned up after the test."""

    def new_zdb(self, *args, unix=False, start=True, tmpdir=None):
        z = Zdb(args=args, unix=unix, tmpdir=tmpdir)
        self.addCleanup(z.cleanup)
        if start:
            z.start()
        return z

    def client(self, z, timeout=REPLY_TIMEOUT):
        c = z.client(timeout=timeout)
        self.addCleanup(c.close)
        return c

    def assertError(self, reply, text):
        """reply must be the error reply -text."""
        self.assertIsInstance(reply, RespError, "expected error %r, got %r" % (text, reply))
        self.assertEqual(reply.text, text)

    def assertIsError(self, reply):
        self.assertIsInstance(reply, RespError, "expected an error reply, got %r" % (reply,))


def parse_info(text):
    """'key: value' lines of an INFO/NSINFO bulk -> (ordered list of (key, value), headers)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    pairs = []
    headers = []
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if not line:
            continue
        if line.startswith("#"):
            headers.append(line)
            continue
        key, sep, value = line.partition(": ")
        if not sep:
            key, sep, value = line.partition(":")
        pairs.append((key.strip(), value.strip()))
    return pairs, headers


def info_dict(text):
    return dict(parse_info(text)[0])


def main():
    """Entry point of each test file: parse --build, run unittest, print a summary."""
    global BUILD_DIR
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--build", default=None)
    opts, rest = parser.parse_known_args()
    BUILD_DIR = opts.build
    name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    try:
        path = require_binary()
    except ZdbNotFound as e:
        print(str(e), file=sys.stderr)
        print("SUMMARY %s: FAILED (zdb binary not found)" % name)
        sys.exit(1)
    print("zdb binary: %s" % path)
    sys.stdout.flush()
    prog = unittest.main(module="__main__", argv=[sys.argv[0]] + rest, exit=False, verbosity=2)
    r = prog.result
    ok = r.wasSuccessful()
    print("SUMMARY %s: %d run, %d failures, %d errors, %d skipped -> %s"
          % (name, r.testsRun, len(r.failures), len(r.errors), len(r.skipped), "OK" if ok else "FAILED"))
    sys.exit(0 if ok else 1)
