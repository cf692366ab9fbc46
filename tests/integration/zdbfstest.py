"""Helpers for zdbfs tests: a zdb and a zdbfs mount in a temporary directory.

A mount is always taken down (fusermount3 -u, then a lazy unmount) and its process
stopped by PID, even when a test fails.
"""
import os
import signal
import subprocess
import time

import zdbtest

ZDBFS_START_TIMEOUT = 20.0


def zdbfs_binary():
    return os.path.join(zdbtest.BUILD_DIR, "zdbfs", "zdbfs")


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if line.split()[4] == path:
                return True
    return False


class Mount:
    """One zdbfs process mounted on <tmpdir>/mnt-N."""

    seq = 0

    def __init__(self, zdb, tmpdir, opts=()):
        Mount.seq += 1
        self.zdb = zdb
        self.tmpdir = tmpdir
        self.path = os.path.join(tmpdir, "mnt-%d" % Mount.seq)
        os.makedirs(self.path, exist_ok=True)
        self.opts = list(opts)
        self.proc = None
        self.log_path = os.path.join(tmpdir, "zdbfs-%d.log" % Mount.seq)

    def argv(self):
        o = ["host=127.0.0.1", "port=%d" % self.zdb.port] + self.opts
        return [zdbfs_binary(), self.path, "-f", "-o", ",".join(o)]

    def start(self, expect_failure=False, timeout=ZDBFS_START_TIMEOUT):
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if expect_failure:
                    return self.proc.returncode, self.log()
                raise AssertionError("zdbfs exited with %s:\n%s" % (self.proc.returncode, self.log()))
            if is_mounted(self.path):
                if expect_failure:
                    self.stop()
                    raise AssertionError("zdbfs mounted although it should have refused")
                return self
            time.sleep(0.02)
        self.kill9()
        raise AssertionError("zdbfs did not mount within %.0fs:\n%s" % (timeout, self.log()))

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-6000:]
        except OSError:
            return ""

    def unmount(self):
        """fusermount3 -u; a mount still busy a moment after its last close (the kernel's
        release of a file is asynchronous) is tried again, for up to 10 s."""
        deadline = time.monotonic() + 10
        while is_mounted(self.path):
            r = subprocess.run(["fusermount3", "-u", self.path], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, timeout=60)
            if r.returncode == 0 or not is_mounted(self.path):
                break
            self.unmount_error = r.stderr.decode("utf-8", "replace").strip()
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)

    def stop(self, timeout=60):
        """Unmounts cleanly; returns zdbfs's exit status."""
        self.unmount()
        if self.proc is None:
            return None
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError("zdbfs did not exit within %d s of its unmount (%s)" %
                                 (timeout, getattr(self, "unmount_error", "unmounted")))
        rc = self.proc.returncode
        self.proc = None
        if is_mounted(self.path):
            subprocess.run(["umount", "-l", self.path], timeout=30)
        return rc

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None
        # the kernel keeps a dead FUSE mount until it is unmounted
        for _ in range(50):
            if not is_mounted(self.path):
                break
            subprocess.run(["umount", "-l", self.path], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
            time.sleep(0.05)

    def cleanup(self):
        try:
            self.stop(timeout=30)
        finally:
            self.kill9()
