"""A target for `pyrewind dump`'s asyncio tasks (tests/e2e/test_dump.py): an event loop whose
tasks are parked in known coroutines at the lines marked `# await: NAME`.

    worker-1  worker() awaiting inner() awaiting asyncio.sleep
    joiner    joiner() awaiting the task worker-1
    waiter    waiter() awaiting an asyncio.Event
    main      the task asyncio.run runs: main() awaiting a gather of the three
    spinner   running: spinner() in a busy loop, the loop's current task from then on
    finished  done before the others park: not shown

The spinner prints one JSON line (the pid) once every other task is parked; the test reads
the marked lines from this file.
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


def spin():
    while True:
        pass


async def spinner():
    await asyncio.sleep(0)  # the others park meanwhile
    print(json.dumps({"pid": os.getpid()}), flush=True)
    spin()  # await: spinner


async def finish():
    return 1


async def main():
    event = asyncio.Event()
    first = asyncio.create_task(worker(600), name="worker-1")
    tasks = [first, asyncio.create_task(joiner(first), name="joiner"),
             asyncio.create_task(waiter(event), name="waiter")]
    await asyncio.create_task(finish(), name="finished")
    asyncio.create_task(spinner(), name="spinner")
    await asyncio.gather(*tasks)  # await: main


if __name__ == "__main__":
    asyncio.run(main())
