#!/usr/bin/env python3
"""Login load and the server's memory: fires LOGINS password logins (half of
them wrong, which pay the same hash) at CONCURRENCY from threads against
BASE (an app-client base URL with bench@example.com signed up), sampling the
resident set of PID before, at its peak, right after and after IDLE seconds.

    bench/memory.py BASE PID [LOGINS] [CONCURRENCY] [IDLE]
"""
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def login(base, i):
    password = "correct horse battery" if i % 2 == 0 else "wrong password"
    body = json.dumps({"email": "bench@example.com", "password": password}).encode()
    request = urllib.request.Request(
        f"{base}/auth/login", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def main():
    base, pid = sys.argv[1], int(sys.argv[2])
    logins = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    concurrency = int(sys.argv[4]) if len(sys.argv) > 4 else 64
    idle = int(sys.argv[5]) if len(sys.argv) > 5 else 60
    before = rss_mb(pid)
    peak = before
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mb(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        statuses = list(pool.map(lambda i: login(base, i), range(logins)))
    elapsed = time.monotonic() - start
    done.set()
    sampler.join()
    after = rss_mb(pid)
    time.sleep(idle)
    idled = rss_mb(pid)
    counts = {s: statuses.count(s) for s in sorted(set(statuses))}
    print(f"logins {logins} at {concurrency}: {elapsed:.1f} s, statuses {counts}")
    print(
        f"RSS MB: before {before:.0f}, peak {peak:.0f}, after {after:.0f}, "
        f"after {idle} s idle {idled:.0f}"
    )


if __name__ == "__main__":
    main()
