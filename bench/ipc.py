"""IPC throughput from inside a sandbox: kernel pipes, queues and shared memory.

An app process in a runc container (standard policy) measures, in one run, each kernel
IPC path beside its anchor on the same machine and in the same container:

- kernel pipe (pipe.write / pipe.read, 64 KiB chunks) against a plain OS pipe;
- kernel queue (queue.send / queue.receive, 1 KiB messages) against 1 KiB messages
  written to and read from an OS pipe;
- shared memory mapped zero copy (shm.attach + mmap) and through calls (shm.write)
  against a memcpy of the same size in the process's own memory.

Needs root and runc. Usage: python bench/ipc.py [--seconds S] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import trio

from kernel.client import open_kernel_client
from kernel.config import KernelSettings
from kernel.core import Kernel
from kernel.service import KernelService

INSIDE = r"""
import json, mmap, os, sys, threading, time
import agentos_kernel

SECONDS = float(sys.argv[1])
CHUNK = 64 * 1024
MESSAGE = 1024
SEGMENT = 64 << 20


def timed(work):
    start = time.perf_counter()
    amount = work(start + SECONDS)
    return amount, time.perf_counter() - start


def os_pipe(until):
    read_fd, write_fd = os.pipe()
    block = b"x" * CHUNK

    def writer():
        while time.perf_counter() < until:
            os.write(write_fd, block)
        os.close(write_fd)

    thread = threading.Thread(target=writer)
    thread.start()
    total = 0
    while chunk := os.read(read_fd, CHUNK):
        total += len(chunk)
    thread.join()
    os.close(read_fd)
    return total


def os_pipe_messages(until):  # one 1 KiB write and one 1 KiB read per message
    read_fd, write_fd = os.pipe()
    message = b"m" * MESSAGE

    def writer():
        while time.perf_counter() < until:
            os.write(write_fd, message)  # atomic: at most PIPE_BUF
        os.close(write_fd)

    thread = threading.Thread(target=writer)
    thread.start()
    received = 0
    while os.read(read_fd, MESSAGE):
        received += 1
    thread.join()
    os.close(read_fd)
    return received


def kernel_pipe(until):
    with agentos_kernel.connect() as writer_conn, agentos_kernel.connect() as reader_conn:
        pipe = writer_conn.call("pipe.create", capacity=1 << 20)["pipe_id"]
        block = b"x" * CHUNK

        def writer():
            while time.perf_counter() < until:
                writer_conn.call("pipe.write", pipe_id=pipe, data=block)
            writer_conn.call("pipe.close", pipe_id=pipe, end="write")

        thread = threading.Thread(target=writer)
        thread.start()
        total = 0
        while True:
            got = reader_conn.call("pipe.read", pipe_id=pipe, size=1 << 20)
            total += len(got["data"])
            if got["eof"]:
                break
        thread.join()
        return total


def kernel_queue(until):
    with agentos_kernel.connect() as sender, agentos_kernel.connect() as receiver:
        queue = sender.call("queue.create", capacity=10000)["queue_id"]
        message = b"m" * MESSAGE
        sent = [0]

        def send():
            while time.perf_counter() < until:
                sender.call("queue.send", queue_id=queue, data=message)
                sent[0] += 1
            sender.call("queue.close", queue_id=queue)

        thread = threading.Thread(target=send)
        thread.start()
        received = 0
        while True:
            try:
                receiver.call("queue.receive", queue_id=queue)
            except agentos_kernel.KernelError as exc:
                if exc.code != "EPIPE":
                    raise
                break
            received += 1
        thread.join()
        return received


def memcpy(until):  # the same copy as shm_mapped, into the process's own memory
    source, target = bytes(SEGMENT), mmap.mmap(-1, SEGMENT)
    total = 0
    while time.perf_counter() < until:
        target[:] = source
        total += SEGMENT
    target.close()
    return total


def shm_mapped(until):
    with agentos_kernel.connect() as kernel:
        shm = kernel.call("shm.create", size=SEGMENT)["shm_id"]
        pages = kernel.attach_shm(shm)
        source = bytes(SEGMENT)
        total = 0
        while time.perf_counter() < until:
            pages[:] = source
            total += SEGMENT
        pages.close()
        kernel.call("shm.destroy", shm_id=shm)
        return total


def shm_calls(until):
    with agentos_kernel.connect() as kernel:
        shm = kernel.call("shm.create", size=SEGMENT)["shm_id"]
        kernel.call("shm.attach", shm_id=shm, pass_fd=False)
        block = b"x" * (1 << 20)
        total, offset = 0, 0
        while time.perf_counter() < until:
            kernel.call("shm.write", shm_id=shm, offset=offset, data=block)
            total += len(block)
            offset = (offset + len(block)) % SEGMENT
        kernel.call("shm.destroy", shm_id=shm)
        return total


results = {}
for name, work in [
    ("os_pipe", os_pipe), ("kernel_pipe", kernel_pipe), ("os_pipe_messages", os_pipe_messages),
    ("kernel_queue", kernel_queue),
    ("memcpy", memcpy), ("shm_mapped", shm_mapped), ("shm_calls", shm_calls),
]:
    amount, seconds = timed(work)
    results[name] = {"amount": amount, "seconds": seconds}
print(json.dumps(results))
"""

ROWS = [
    # (label, key, unit, anchor key)
    ("kernel pipe, 64 KiB writes", "kernel_pipe", "MB/s", "os_pipe"),
    ("OS pipe (anchor)", "os_pipe", "MB/s", None),
    ("kernel queue, 1 KiB messages", "kernel_queue", "msg/s", "os_pipe_messages"),
    ("OS pipe, 1 KiB messages (anchor)", "os_pipe_messages", "msg/s", None),
    ("shm mapped (mmap, zero copy)", "shm_mapped", "MB/s", "memcpy"),
    ("shm through calls (1 MiB shm.write)", "shm_calls", "MB/s", "memcpy"),
    ("memcpy to private memory (anchor)", "memcpy", "MB/s", None),
]


async def measure(seconds: float) -> dict[str, Any]:
    """Run a kernel, an app container in it, and the measurements inside."""
    state = Path(tempfile.mkdtemp(prefix="bench-ipc-", dir="/tmp"))
    try:
        settings = KernelSettings(data_dir=state)
        async with trio.open_nursery() as nursery:
            handle = await nursery.start(KernelService(settings, kernel=Kernel()).run)
            async with open_kernel_client(handle.socket) as kernel:
                info = await kernel.call(
                    "proc.spawn", {"name": "bench", "command": {"argv": ["sleep", "3600"]}}
                )
                print("measuring inside a container ...", file=sys.stderr, flush=True)
                argv = ["python3", "-c", INSIDE, str(seconds)]
                out, err = bytearray(), bytearray()
                async with kernel.stream(
                    "proc.exec", {"pid": info["pid"], "command": {"argv": argv}}
                ) as items:
                    async for item in items:
                        (out if item["stream"] == "stdout" else err).extend(item["data"])
                    result = items.result
                await kernel.call("proc.kill", {"pid": info["pid"]})
            nursery.cancel_scope.cancel()
        if result["exit_code"] != 0:
            msg = f"the measurement failed in the container: {err.decode(errors='replace')}"
            raise RuntimeError(msg)
        return dict(json.loads(out))
    finally:
        shutil.rmtree(state, ignore_errors=True)


def rate(figure: dict[str, float], unit: str) -> float:
    """Per second, in the row's unit."""
    per_second = figure["amount"] / figure["seconds"]
    return per_second / 1e6 if unit == "MB/s" else per_second


def table(results: dict[str, Any], seconds: float) -> str:
    """The rows, each with its anchor's ratio where it has one."""
    lines = [
        f"IPC from inside a runc sandbox, {seconds} s per figure",
        f"{'path':<38}{'rate':>12}  {'unit':<6}{'vs anchor':>10}",
    ]
    for label, key, unit, anchor in ROWS:
        value = rate(results[key], unit)
        ratio = f"{value / rate(results[anchor], unit):.3f}x" if anchor else "-"
        lines.append(f"{label:<38}{value:>12,.1f}  {unit:<6}{ratio:>10}")
    lines.append(
        "ratios: a row's rate over its anchor's (the OS pipe for the kernel pipe and queue, "
        "a memcpy for shared memory); every figure was measured in the same container in "
        "this run."
    )
    return "\n".join(lines)


def main() -> int:
    """Measure, print the table, and with --json a JSON object as the last line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each figure")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    results = trio.run(measure, args.seconds)
    print(table(results, args.seconds))
    if args.json:
        print(json.dumps({"bench": "ipc", "seconds": args.seconds, "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
