#!/usr/bin/env python3
"""The Debian package, tried as an operator would (issue: install and run it like a Debian
service). Builds it (scripts/package.sh), installs it with dpkg on this machine, checks
the units (systemd-analyze verify), starts zdb@test by running its unit's ExecStart line
as the unit's user (systemd is not PID 1 here), PINGs it, checks --version, the man pages
(they render without warnings and name every flag of --help), the completion, the
generated zstor config (it passes `zstor test` once its addresses are filled in), that
conffiles and the config survive a reinstall, then purges the package and checks that
nothing is left but the qsfs user (Debian policy keeps system users).

Changes the machine (dpkg -i, then --purge): for CI machines and on demand.
    tests/package/test_package.py
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ENV = dict(os.environ, PATH="/usr/sbin:/usr/bin:/sbin:/bin")  # nothing from the build tree


def run(*argv, check=True, **kw):
    env = kw.pop("env", ENV)
    r = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                       timeout=kw.pop("timeout", 900), **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s -> %d\n%s\n%s" % (" ".join(argv), r.returncode,
                                                   r.stdout.decode()[-3000:], r.stderr.decode()[-3000:]))
    return r


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def ping(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = run("redis-cli", "-p", str(port), "PING", check=False)
        if r.stdout.strip() == b"PONG":
            return True
        time.sleep(0.1)
    return False


def unit_exec_start(path, instance):
    with open(path) as f:
        for line in f:
            if line.startswith("ExecStart="):
                return line[len("ExecStart="):].strip().replace("%i", instance)
    raise AssertionError("no ExecStart in " + path)


def check_man_covers_help(binary, page):
    text = run("man", "-l", page, env=dict(ENV, MANWIDTH="200")).stdout.decode()
    warn = run("man", "--warnings", "-l", page, env=dict(ENV, MANWIDTH="80")).stderr.decode()
    assert warn.strip() == "", "%s: man warnings:\n%s" % (page, warn)
    helptext = run(binary, "--help").stdout.decode()
    flags = set(re.findall(r"(?<![\w-])(--[a-z][a-z_-]*|-[a-zA-Z0])\b", helptext))
    missing = sorted(f for f in flags if f not in text)
    assert not missing, "%s: flags of %s --help not in the man page: %s" % (page, binary, missing)
    return len(flags)


def main():
    if os.geteuid() != 0:
        print("test_package: needs root (dpkg -i)")
        return 77
    steps = []
    run(os.path.join(REPO, "scripts", "package.sh"), cwd=REPO, timeout=1800)
    debs = [f for f in os.listdir(os.path.join(REPO, "build-deb")) if f.endswith(".deb")]
    assert len(debs) == 1, debs
    deb = os.path.join(REPO, "build-deb", debs[0])
    steps.append("built and lintian-checked " + debs[0])

    run("dpkg", "--purge", "qsfs", check=False)
    run("dpkg", "-i", deb)
    files = [l for l in run("dpkg", "-L", "qsfs").stdout.decode().splitlines() if l]
    try:
        assert shutil.which("zstor", path=ENV["PATH"]) == "/usr/bin/zstor"
        for prog in ("zdb", "zstor", "zdbfs", "qsfs", "qsfs-hook"):
            v = run("/usr/bin/" + prog, "--version").stdout.decode()
            assert re.search(r"\(commit [0-9a-f]{12}(-dirty)?\)", v), v
        steps.append("installed; --version: " + v.strip())

        units = ["/lib/systemd/system/zstor.service", "/lib/systemd/system/zdb@.service"]
        for u in units:
            assert os.path.exists(u), u
        tmpu = tempfile.mkdtemp()
        shutil.copy(units[1], os.path.join(tmpu, "zdb@test.service"))
        shutil.copy(units[0], tmpu)
        r = run("systemd-analyze", "verify", os.path.join(tmpu, "zdb@test.service"),
                os.path.join(tmpu, "zstor.service"), check=False)
        bad = [l for l in (r.stdout + r.stderr).decode().splitlines()
               if "zdb@" in l or "zstor" in l]
        assert r.returncode == 0 and not bad, (r.returncode, bad)
        shutil.rmtree(tmpu)
        steps.append("systemd-analyze verify: both units clean")
        qunits = ["/lib/systemd/system/" + u for u in
                  ("qsfs.target", "qsfs-zstor.service", "qsfs-zdb.service", "qsfs-zdbfs.service")]
        r = run("systemd-analyze", "verify", *qunits, check=False)
        bad = [l for l in (r.stdout + r.stderr).decode().splitlines() if "qsfs" in l]
        assert r.returncode == 0 and not bad, (r.returncode, bad)
        steps.append("systemd-analyze verify: the qsfs target and its three units clean")

        # zdb@test as its unit runs it: the qsfs user, its state directory, its env files
        port = free_port()
        os.makedirs("/etc/qsfs/zdb", exist_ok=True)
        with open("/etc/qsfs/zdb/test.env", "w") as f:
            f.write('ZDB_OPTS="--listen 127.0.0.1 --port %d"\n' % port)
        state = "/var/lib/qsfs/zdb/test"
        os.makedirs(state, exist_ok=True)
        shutil.chown(state, "qsfs", "qsfs")
        line = unit_exec_start(units[1], "test").replace("$ZDB_OPTS", "--listen 127.0.0.1 --port %d"
                                                         % port)
        log = open("/tmp/qsfs-zdb-test.log", "wb")
        proc = subprocess.Popen(["runuser", "-u", "qsfs", "--"] + line.split(), stdout=log,
                                stderr=log, env=ENV)
        try:
            assert ping(port), open("/tmp/qsfs-zdb-test.log").read()
            import pwd
            st = os.stat(os.path.join(state, "data"))
            assert st.st_uid == pwd.getpwnam("qsfs").pw_uid, "zdb@test did not run as qsfs"
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            log.close()
        with open("/tmp/qsfs-zdb-test.log") as f:
            started = f.read()
        assert "listening on" in started, started
        steps.append("zdb@test ExecStart as user qsfs: PONG on port %d; its log: %s"
                     % (port, started.splitlines()[0][:120]))

        n1 = check_man_covers_help("/usr/bin/zdb", run("man", "-w", "zdb").stdout.decode().strip())
        n2 = check_man_covers_help("/usr/bin/zstor", run("man", "-w", "zstor").stdout.decode().strip())
        n3 = check_man_covers_help("/usr/bin/zdbfs", run("man", "-w", "zdbfs").stdout.decode().strip())
        n4 = check_man_covers_help("/usr/bin/qsfs", run("man", "-w", "qsfs").stdout.decode().strip())
        run("man", "-w", "5", "zstor.toml")
        steps.append("man -w zstor, zdb, zdbfs, qsfs, zstor.toml(5); pages render without warnings "
                     "and name all %d + %d + %d + %d flags of --help" % (n1, n2, n3, n4))

        r = run("bash", "-c", "source /usr/share/bash-completion/bash_completion; "
                "_completion_loader zstor; _completion_loader zdb; complete -p zstor; complete -p zdb")
        assert b"_zstor" in r.stdout and b"_zdb" in r.stdout
        steps.append("bash completion loads")

        cfg = "/etc/qsfs/zstor.toml"
        st = os.stat(cfg)
        assert oct(st.st_mode & 0o777) == "0o640", oct(st.st_mode)
        with open(cfg) as f:
            text = f.read()
        assert "@DATA_KEY@" not in text and "@META_KEY@" not in text
        keys = re.findall(r'key = "([0-9a-f]{64})"', text)
        assert len(keys) == 2 and keys[0] != keys[1], keys
        # fill the addresses in with 8 real zdbs: zstor test passes
        zdbs, ports = [], []
        tmp = tempfile.mkdtemp()
        try:
            for i in range(8):
                p = free_port()
                d = os.path.join(tmp, str(i))
                zdbs.append(subprocess.Popen(["/usr/bin/zdb", "--listen", "127.0.0.1", "--port",
                                              str(p), "--data", d + "/data", "--index",
                                              d + "/index"], stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL))
                ports.append(p)
            for i, p in enumerate(ports):
                assert ping(p)
                ns = "qsfs-meta" if i < 4 else "qsfs-data"
                run("redis-cli", "-p", str(p), "NSNEW", ns)
                if i >= 4:
                    run("redis-cli", "-p", str(p), "NSSET", ns, "mode", "seq")
            for i in range(4):
                text = text.replace("meta%d.example:9900" % (i + 1), "127.0.0.1:%d" % ports[i])
                text = text.replace("data%d.example:9900" % (i + 1), "127.0.0.1:%d" % ports[4 + i])
            filled = os.path.join(tmp, "zstor.toml")
            with open(filled, "w") as f:
                f.write(text)
            r = run("/usr/bin/zstor", "-c", filled, "test")
            steps.append("the generated config with its addresses filled in: zstor test passes")
        finally:
            for z in zdbs:
                z.terminate()
                z.wait(30)
            shutil.rmtree(tmp)

        # a reinstall keeps the conffile's change and the generated config
        with open("/etc/qsfs/zdb.env", "a") as f:
            f.write("# changed by the operator\n")
        run("dpkg", "-i", "--force-confold", deb)
        with open("/etc/qsfs/zdb.env") as f:
            assert "changed by the operator" in f.read()
        with open(cfg) as f:
            assert re.findall(r'key = "([0-9a-f]{64})"', f.read()) == keys
        steps.append("reinstall: the conffile /etc/qsfs/zdb.env and the keys of zstor.toml kept")
    finally:
        if os.path.exists("/etc/qsfs/zdb/test.env"):  # the operator's file (ours): not the package's
            os.unlink("/etc/qsfs/zdb/test.env")
        run("dpkg", "--purge", "qsfs")
    left = [f for f in files if os.path.exists(f) and not os.path.isdir(f)]
    left += [d for d in ("/etc/qsfs", "/var/lib/qsfs", "/usr/share/qsfs") if os.path.exists(d)]
    assert not left, "left after purge: %s" % left
    assert run("getent", "passwd", "qsfs", check=False).returncode == 0
    steps.append("purged: no file of the package, /etc/qsfs or /var/lib/qsfs left; the qsfs "
                 "user stays (policy)")
    for s in steps:
        print("ok  " + s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
