"""A worker thread ends the process with os._exit while other threads are being traced."""
import os
import threading
import time


def spin(stop):
    total = 0
    while not stop.is_set():
        total += 1


def quit_soon():
    time.sleep(0.2)
    print("exiting from a thread", flush=True)
    os._exit(3)


stop = threading.Event()
workers = [threading.Thread(target=spin, args=(stop,)) for _ in range(3)]
for worker in workers:
    worker.start()
threading.Thread(target=quit_soon).start()
spin(threading.Event())  # never returns: os._exit ends everything
