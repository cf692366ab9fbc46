"""Rebuilds a directory tree as a power cut would leave it, from what the fault shim
(tests/faults/faultshim.c, QSFS_POWERCUT_*) recorded at each successful sync: a name that
is not in its directory's last synced listing is gone, a file has the content of its last
sync (empty if it was never synced). Directories never synced lose every entry."""

import os
import shutil


def _shadow(shadow, path, suffix):
    return os.path.join(shadow, path.replace("/", "%") + suffix)


def rebuild(root, shadow):
    """Applies the power cut to every directory below root (root itself survives).
    Returns (files kept, names dropped)."""
    kept, dropped = 0, 0

    def walk(d):
        nonlocal kept, dropped
        listing = _shadow(shadow, d, ".dirlist")
        durable = set()
        if os.path.exists(listing):
            with open(listing) as f:
                durable = {line.rstrip("\n") for line in f if line.strip()}
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            if name not in durable:
                if os.path.isdir(p) and not os.path.islink(p):
                    shutil.rmtree(p)
                else:
                    os.unlink(p)
                dropped += 1
                continue
            if os.path.isdir(p) and not os.path.islink(p):
                walk(p)
                continue
            s = _shadow(shadow, p, ".data")
            if os.path.exists(s):
                shutil.copyfile(s, p)
            else:
                open(p, "wb").close()
            kept += 1

    for top in sorted(os.listdir(root)):
        p = os.path.join(root, top)
        if os.path.isdir(p) and not os.path.islink(p):
            walk(p)
    return kept, dropped


def snapshot(root, shadow):
    """Records the whole tree below root as durable (a clean shutdown): every file's
    content and every directory's listing, replacing what shadow held."""
    for name in os.listdir(shadow):
        os.unlink(os.path.join(shadow, name))
    for d, dirs, files in os.walk(root):
        if d != root:
            with open(_shadow(shadow, d, ".dirlist"), "w") as f:
                for name in sorted(dirs + files):
                    f.write(name + "\n")
        if d == root:
            continue
        for name in files:
            p = os.path.join(d, name)
            shutil.copyfile(p, _shadow(shadow, p, ".data"))
