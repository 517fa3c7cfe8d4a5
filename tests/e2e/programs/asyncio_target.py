"""A target for `pyrewind dump`'s asyncio tasks (tests/e2e/test_dump.py): an event loop whose
tasks are parked in known coroutines at the lines marked `# await: NAME`.

    worker-1  worker() awaiting inner() awaiting asyncio.sleep
    joiner    joiner() awaiting the task worker-1
    waiter    waiter() awaiting an asyncio.Event
    main      the task asyncio.run runs: main() awaiting a gather of the three
    finished  done before the others park: not shown

Prints one JSON line (the pid) once every task is parked; the test reads the marked lines
from this file.
"""
import asyncio
import json
import os


async def inner(delay):
    await asyncio.sleep(delay)  # await: inner


async def worker(delay):
    await inner(delay)  # await: worker


async def joiner(task):
    await task  # await: joiner


async def waiter(event):
    await event.wait()  # await: waiter


async def finish():
    return 1


async def main():
    event = asyncio.Event()
    first = asyncio.create_task(worker(600), name="worker-1")
    tasks = [first, asyncio.create_task(joiner(first), name="joiner"),
             asyncio.create_task(waiter(event), name="waiter")]
    await asyncio.create_task(finish(), name="finished")
    await asyncio.sleep(0)  # every task runs to its await
    asyncio.get_running_loop().call_soon(lambda: print(json.dumps({"pid": os.getpid()}), flush=True))
    await asyncio.gather(*tasks)  # await: main


if __name__ == "__main__":
    asyncio.run(main())
