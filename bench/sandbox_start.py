"""How long /bin/true takes in a sandbox, through our layer and the anchors.

Our layer cold and from the warm pool, against raw `runc run`, `docker run` on the same
engine, and bwrap, all measured in one run.

For our layer two times are taken per run: *to result* (request until the exit status is
known: what a caller waits for) and *to clean* (until the sandbox is deleted). The
anchors return only once they have cleaned up, so theirs is one time. Ratios compare each
row's median with raw `runc run`'s.

Needs root, runc, tini, docker.io (for the Docker rows) and bubblewrap.
Usage: python bench/sandbox_start.py [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from sandbox.cgroups import CgroupManager
from sandbox.oci.rootfs import HostLayout, build_rootfs
from sandbox.oci.spec import ProcessSpec, build_config
from sandbox.policy import RuntimeName, builtin_policy
from sandbox.pool import WarmPool, prepare
from sandbox.runtime import BASE_IMAGE, Runtime, open_runtime
from sandbox.testing import private_dockerd

TRUE = ProcessSpec(["/bin/true"])
BWRAP = [
    "bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr",
    "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64",
    "/lib64", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "/bin/true",
]  # fmt: skip


def summary(samples: list[float]) -> dict[str, float]:
    """Median and 95th percentile, in ms."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), 2), "p95": round(p95, 2)}


def time_command(argv: list[str], runs: int) -> list[float]:
    """Wall time of ``argv``, ``runs`` times, in ms."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def raw_runc(state: Path, runs: int) -> list[float]:
    """`runc run` of a bundle with the same hardening as ours (no /data volume)."""
    bundle = state / "raw-bundle"
    host = HostLayout.detect()
    bundle.mkdir()
    build_rootfs(bundle / "rootfs", host, uid=65534, gid=65534, hostname="sandbox")
    config = build_config(
        cgroup="agentos-bench/raw", process=TRUE, policy=builtin_policy(), uid=65534, gid=65534,
        host=host, cgroup_mode=CgroupManager().mode,
    )  # fmt: skip
    samples = []
    for i in range(runs):
        config["linux"]["cgroupsPath"] = f"/agentos-bench/raw-{i}"
        (bundle / "config.json").write_text(json.dumps(config))
        started = time.perf_counter()
        root = str(state / "raw-state")
        subprocess.run(
            ["runc", "--root", root, "run", "--bundle", str(bundle), f"raw-{i}"],
            check=True, capture_output=True,
        )  # fmt: skip
        samples.append((time.perf_counter() - started) * 1000)
    CgroupManager().remove_if_empty("agentos-bench")
    return samples


async def ours(
    runtime: Runtime, runs: int, *, pool: WarmPool | None = None
) -> tuple[list[float], list[float]]:
    """(to result, to clean) in ms for /bin/true through our layer."""
    policy = builtin_policy()
    to_result, to_clean = [], []
    for _ in range(runs):
        if pool is not None:
            with trio.fail_after(60):
                while pool.ready < pool.size:  # noqa: ASYNC110 - start each take from a full pool
                    await trio.sleep(0.005)
        started = time.perf_counter()
        prepared = await (pool.take(TRUE) if pool else prepare(runtime, TRUE, policy))
        await prepared.container.start()
        await prepared.container.wait()
        to_result.append((time.perf_counter() - started) * 1000)
        await prepared.discard()
        to_clean.append((time.perf_counter() - started) * 1000)
    return to_result, to_clean


Rows = Callable[[], Awaitable[tuple[list[float], list[float]]]]


async def measure(runs: int, docker_url: str | None) -> dict[str, dict[str, float]]:
    """Every row of the table."""
    results: dict[str, dict[str, float]] = {}
    state = Path(tempfile.mkdtemp(prefix="aos-bench-", dir="/tmp"))
    try:
        results["runc run (raw)"] = summary(raw_runc(state, runs))
        runc = open_runtime(RuntimeName.RUNC, state / "runc")

        async def ours_row(label: str, rows: Rows) -> None:
            """One row of ours: times to result and to clean."""
            result, clean = await rows()
            results[label] = {
                **summary(result),
                **{f"clean_{k}": v for k, v in summary(clean).items()},
            }

        await ours_row("agentos cold (runc)", lambda: ours(runc, runs))
        async with trio.open_nursery() as nursery:
            pool = await nursery.start(WarmPool(runc, builtin_policy(), size=2).run)
            await ours_row("agentos warm pool (runc)", lambda: ours(runc, runs, pool=pool))
            nursery.cancel_scope.cancel()
        if docker_url:
            docker_runtime = open_runtime(
                RuntimeName.DOCKER, state / "docker", docker_url=docker_url
            )
            await ours_row("agentos cold (docker)", lambda: ours(docker_runtime, runs))
            await docker_runtime.aclose()  # the image is built now: `docker run` can use it
            docker = [
                "docker", "-H", docker_url, "run", "--rm", "--network", "none",
                "--user", "65534:65534", "-v", "/usr:/usr:ro", BASE_IMAGE, "/bin/true",
            ]  # fmt: skip
            results["docker run (same dockerd)"] = summary(time_command(docker, runs))
        if shutil.which("bwrap"):
            results["bwrap"] = summary(time_command(BWRAP, runs))
    finally:
        shutil.rmtree(state, ignore_errors=True)
    return results


def table(results: dict[str, dict[str, float]], runs: int) -> str:
    """The results as a table, with each median's ratio to raw `runc run`."""
    anchor = results["runc run (raw)"]["p50"]
    lines = [
        f"/bin/true in a sandbox, {runs} runs each, milliseconds",
        f"{'method':<28}{'p50':>9}{'p95':>9}{'clean p50':>11}{'clean p95':>11}{'vs runc run':>13}",
    ]
    for label, row in results.items():
        clean = (f"{row['clean_p50']:>11.1f}{row['clean_p95']:>11.1f}" if "clean_p50" in row
                 else f"{'':>11}{'':>11}")  # fmt: skip
        lines.append(
            f"{label:<28}{row['p50']:>9.1f}{row['p95']:>9.1f}{clean}{row['p50'] / anchor:>12.2f}x"
        )
    lines.append("p50/p95: request until the exit status is known (the anchors: until they return,")
    lines.append("which includes their cleanup); clean: until our sandbox is deleted too.")
    return "\n".join(lines)


def main() -> int:
    """Measure, print the table, and with --json a JSON object as the last line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/sandbox_start.py needs root", file=sys.stderr)
        return 2
    if shutil.which("dockerd"):
        with private_dockerd() as url:
            results = trio.run(measure, args.runs, url)
    else:
        results = trio.run(measure, args.runs, None)
    print(table(results, args.runs))
    if args.json:
        print(json.dumps({"bench": "sandbox_start", "runs": args.runs, "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
