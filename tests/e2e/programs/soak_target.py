"""A small multi-threaded service for the soak benchmark: worker threads process batches of
requests (dict and list churn, string building, short-lived threads) at a steady pace until
argv[1] seconds have passed."""
import sys
import threading
import time


def handle(request, cache, log):
    key = request % 211
    entry = cache.get(key)
    if entry is None:
        entry = cache[key] = {"hits": 0, "tags": []}
    entry["hits"] += 1
    if len(entry["tags"]) < 8:
        entry["tags"].append("t%d" % request)
    log.append("req %d -> %d" % (request, entry["hits"]))
    if len(log) > 100:
        del log[:50]
    return entry["hits"]


def worker(index, deadline, counts):
    cache, log = {}, []
    request = index
    while time.monotonic() < deadline:
        for _ in range(100):
            handle(request, cache, log)
            request += 4
        counts[index] += 100
        time.sleep(0.02)


def main(seconds):
    deadline = time.monotonic() + seconds
    counts = [0] * 4
    threads = [threading.Thread(target=worker, args=(i, deadline, counts)) for i in range(4)]
    for thread in threads:
        thread.start()
    while time.monotonic() < deadline:  # short-lived threads, started all along
        helper = threading.Thread(target=handle, args=(7, {}, []))
        helper.start()
        helper.join()
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    print("requests %d" % sum(counts), flush=True)


main(float(sys.argv[1]))
