#!/usr/bin/env python3
"""Fill a nestbox server with N tasks for the API benchmark (bench/api/run.sh).

Usage: populate.py HOST PORT N [CONNECTIONS]

Nine tasks in ten are URLs (`POST /tasks/create/url`, form field `url`), one in ten is a
small distinct file (`POST /tasks/create/file`, multipart field `file`), so the table holds
both categories and a few hundred samples. Each of CONNECTIONS threads (default 4) keeps
one HTTP/1.1 connection alive. Any answer other than 200 with a `task_id` aborts.
Prints the first and last task ids and the rate on stdout.
"""

import http.client
import json
import sys
import threading
import time

BOUNDARY = "nestboxpopulate5c1d"


def request_for(n):
    if n % 10 == 0:
        data = (f"nestbox benchmark sample {n}\n" * 40).encode()
        body = (
            f"--{BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="sample{n}.txt"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()
        return "/tasks/create/file", body, f"multipart/form-data; boundary={BOUNDARY}"
    body = f"url=http%3A%2F%2Fexample.test%2F{n}".encode()
    return "/tasks/create/url", body, "application/x-www-form-urlencoded"


def worker(host, port, numbers, ids, errors):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        for n in numbers:
            path, body, ctype = request_for(n)
            conn.request("POST", path, body=body, headers={"Content-Type": ctype})
            resp = conn.getresponse()
            payload = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{path} -> {resp.status}: {payload[:200]!r}")
            ids.append(json.loads(payload)["task_id"])
    except Exception as e:  # reported by the main thread
        errors.append(e)
    finally:
        conn.close()


def main():
    host, port, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    conns = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    ids, errors = [], []
    started = time.monotonic()
    threads = [
        threading.Thread(target=worker, args=(host, port, range(i, total, conns), ids, errors))
        for i in range(conns)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    if errors:
        sys.exit(f"populate: {errors[0]}")
    if len(ids) != total:
        sys.exit(f"populate: created {len(ids)} tasks, wanted {total}")
    print(f"created {total} tasks (ids {min(ids)}..{max(ids)}) in {elapsed:.1f} s, "
          f"{total / elapsed:.0f} tasks/s")


if __name__ == "__main__":
    main()
