"""A lockbench worker (protocol: bench/cmd/lockbench/worker.go) for the
Python-reachable peers, in-process:

    python3 pylock.py flufl PATH        flufl.lock.Lock(PATH).lock() / .unlock()
    python3 pylock.py open PATH         os.open(PATH, O_WRONLY|O_CREAT|O_TRUNC) / os.close: a lock through the nfslockfs mount
    python3 pylock.py liblockfile PATH  liblockfile's lockfile_create("PATH.lock", 100, 0) / lockfile_remove
                                        (the C library, called through ctypes)

Run it with Debian's /usr/bin/python3, which sees python3-flufl.lock.
"""

import ctypes
import os
import sys
import time

MARK = "/.lockbench-mark/"


def flufl_locker(path):
    from flufl.lock import Lock

    lock = Lock(path)
    return lock.lock, lock.unlock


def open_locker(path):
    fd = None

    def lock():
        nonlocal fd
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)

    def unlock():
        os.close(fd)

    return lock, unlock


def liblockfile_locker(path):
    lib = ctypes.CDLL("liblockfile.so.1", use_errno=True)
    name = (path + ".lock").encode()

    def lock():
        # 100 retries: liblockfile sleeps 5 s more after each, so it never
        # gives up within a benchmark.
        rc = lib.lockfile_create(name, 100, 0)
        if rc != 0:
            raise OSError(ctypes.get_errno(), "lockfile_create returned %d" % rc)

    def unlock():
        if lib.lockfile_remove(name) != 0:
            raise OSError(ctypes.get_errno(), "lockfile_remove failed")

    return lock, unlock


def serve(lock, unlock, words):
    now = time.monotonic_ns
    cmd = words[0]
    if cmd == "lock":
        start = now()
        lock()
        return "ok %d %d" % (now(), start)
    if cmd == "unlock":
        t = now()
        unlock()
        return "ok %d" % t
    if cmd == "cycles":
        start = now()
        for _ in range(int(words[1])):
            lock()
            unlock()
        return "ok %d" % (now() - start)
    if cmd == "loop":
        duration, log, ident = int(words[1]) * 1_000_000, words[2], words[3]
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        held, released = (ident + " +\n").encode(), (ident + " -\n").encode()
        cycles, start = 0, now()
        while now() - start < duration:
            lock()
            os.write(fd, held)
            os.write(fd, released)
            unlock()
            cycles += 1
        os.close(fd)
        return "ok %d %d" % (cycles, now() - start)
    raise ValueError("bad command %r" % " ".join(words))


def main():
    kind, path = sys.argv[1], sys.argv[2]
    lock, unlock = {"flufl": flufl_locker, "open": open_locker, "liblockfile": liblockfile_locker}[kind](path)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        os.path.exists(MARK + "_".join(words))
        try:
            reply = serve(lock, unlock, words)
        except Exception as e:  # reported to the orchestrator, which stops
            reply = "err " + str(e).replace("\n", " ")
        os.path.exists(MARK + "_".join(words) + "-done")
        print(reply, flush=True)


if __name__ == "__main__":
    main()
