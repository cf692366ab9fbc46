"""A fault proxy: a TCP relay in front of one backend whose faults a test switches on and
off (the kernels here have no tc netem), in the spirit of toxiproxy.

    p = FaultProxy(("10.77.1.2", 9900))       # listens on 127.0.0.1:<free port>
    p.delay_ms = 200                          # every chunk waits this long, both ways
    p.rate = 64 << 10                         # bytes per second, both ways (0 = unlimited)
    p.refuse = True                           # new connections are closed at once
    p.blackhole = True                        # bytes are swallowed, nothing answers
    p.corrupt_every = 4096                    # one byte in this many server->client bytes flipped
    p.reset_all()                             # every open connection gets a TCP RST
    p.close()

Runs its own thread; safe to drive from the test's thread. Counts what it did (stats).
"""

import random
import select
import socket
import struct
import threading
import time


class FaultProxy:
    def __init__(self, target, seed=1):
        self.target = target
        self.delay_ms = 0
        self.rate = 0
        self.refuse = False
        self.blackhole = False
        self.corrupt_every = 0
        self.rnd = random.Random(seed)
        self.stats = {"connections": 0, "refused": 0, "resets": 0, "corrupted": 0, "bytes": 0}
        self.lock = threading.Lock()
        self.pairs = []  # [client, server]
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(128)
        self.port = self.ls.getsockname()[1]
        self.address = "127.0.0.1:%d" % self.port
        self.stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stop:
            r, _, _ = select.select([self.ls], [], [], 0.1)
            if not r:
                continue
            try:
                c, _ = self.ls.accept()
            except OSError:
                continue
            with self.lock:
                self.stats["connections"] += 1
            if self.refuse:
                with self.lock:
                    self.stats["refused"] += 1
                self._rst(c)
                continue
            try:
                s = socket.create_connection(self.target, timeout=5)
            except OSError:
                self._rst(c)
                continue
            pair = [c, s]
            with self.lock:
                self.pairs.append(pair)
            threading.Thread(target=self._pump, args=(pair, c, s, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(pair, s, c, True), daemon=True).start()

    @staticmethod
    def _rst(sock):
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        except OSError:
            pass

    def _pump(self, pair, src, dst, to_client):
        try:
            while not self.stop:
                r, _, _ = select.select([src], [], [], 0.1)
                if not r:
                    continue
                data = src.recv(65536)
                if not data:
                    break
                if self.blackhole:
                    continue  # swallowed: the peer waits for an answer that never comes
                if self.delay_ms:
                    time.sleep(self.delay_ms / 1000.0)
                if self.rate:
                    time.sleep(len(data) / float(self.rate))
                if to_client and self.corrupt_every:
                    b = bytearray(data)
                    for i in range(len(b)):
                        if self.rnd.randrange(self.corrupt_every) == 0:
                            b[i] ^= 1 << self.rnd.randrange(8)
                            with self.lock:
                                self.stats["corrupted"] += 1
                    data = bytes(b)
                dst.sendall(data)
                with self.lock:
                    self.stats["bytes"] += len(data)
        except (OSError, ValueError):  # the other direction closed the pair
            pass
        finally:
            for sock in pair:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            with self.lock:
                if pair in self.pairs:
                    self.pairs.remove(pair)

    def reset_all(self):
        """A TCP RST on every open connection (both sides)."""
        with self.lock:
            pairs, self.pairs = self.pairs, []
            self.stats["resets"] += len(pairs)
        for c, s in pairs:
            self._rst(c)
            self._rst(s)

    def heal(self):
        self.delay_ms = self.rate = self.corrupt_every = 0
        self.refuse = self.blackhole = False

    def close(self):
        self.stop = True
        self.reset_all()
        self.ls.close()
        self.thread.join(5)
