#!/usr/bin/env python3
"""Load helper of bench/scale/run.sh (standard library only).

  load.py submit BASE COUNT THREADS SIZE   submits COUNT distinct samples of SIZE bytes
                                           through POST /tasks/create/file, THREADS at a
                                           time; prints the seconds it took
  load.py wait BASE COUNT TIMEOUT          polls /cuckoo/status until COUNT tasks are
                                           reported; prints the seconds from the call
"""
import json
import random
import sys
import threading
import time
import urllib.request


def sample(n, size):
    """Distinct content per n: printable strings (URLs, paths) and random bytes, so the
    static stage has strings, IOCs and entropy to work on."""
    rng = random.Random(n)
    out = bytearray()
    while len(out) < size:
        if rng.random() < 0.5:
            out += f"http://host{rng.randrange(10**6)}.example/p{n}/x.php?id={rng.random()}\n".encode()
            out += f"C:\\Users\\bench\\AppData\\f{n}_{rng.randrange(10**6)}.dll\n".encode()
        else:
            out += rng.randbytes(256)
    return bytes(out[:size])


def post_file(base, name, data):
    boundary = "nestboxscalebench"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
        f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(
        f"{base}/tasks/create/file",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)["task_id"]


def submit(base, count, threads, size):
    started = time.monotonic()
    errors = []

    def run(first):
        try:
            for n in range(first, count, threads):
                post_file(base, f"s{n}.bin", sample(n, size))
        except Exception as e:  # reported below; the run is then invalid
            errors.append(e)

    ts = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        sys.exit(f"submit failed: {errors[0]}")
    print(f"{time.monotonic() - started:.3f}")


def wait(base, count, timeout):
    started = time.monotonic()
    while True:
        with urllib.request.urlopen(f"{base}/cuckoo/status", timeout=30) as r:
            tasks = json.load(r)["tasks"]
        if tasks.get("reported", 0) >= count:
            print(f"{time.monotonic() - started:.3f}")
            return
        if time.monotonic() - started > timeout:
            sys.exit(f"only {tasks} after {timeout}s")
        time.sleep(0.1)


if __name__ == "__main__":
    cmd, base = sys.argv[1], sys.argv[2]
    if cmd == "submit":
        submit(base, int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif cmd == "wait":
        wait(base, int(sys.argv[3]), float(sys.argv[4]))
    else:
        sys.exit(__doc__)
