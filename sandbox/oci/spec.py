"""The OCI ``config.json`` of a sandbox: the policy's limits inside fixed hardening.

Whatever the policy, every sandbox gets (DESIGN 3.3): new pid, mount, ipc, uts, net and
cgroup namespaces; a unique non-root uid/gid; no capabilities in any set; no_new_privs;
the seccomp filter of :mod:`sandbox.oci.seccomp`; tini as PID 1; a read-only root;
Docker's masked and read-only /proc paths; read-only /sys and cgroupfs; only runc's
default devices (null, zero, full, random, urandom, tty, pts); a size-limited tmpfs /tmp;
RLIMIT_NOFILE.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sandbox.cgroups import CPU_PERIOD_US, CgroupMode, Resources
from sandbox.errors import InvalidArgumentError
from sandbox.oci.rootfs import HostLayout, host_mounts
from sandbox.oci.seccomp import sandbox_seccomp
from sandbox.policy import Policy

__all__ = [
    "KERNEL_PYTHON",
    "KERNEL_SOCKET",
    "LAUNCH_DIR",
    "MASKED_PATHS",
    "READONLY_PATHS",
    "SANDBOX_HOSTNAME",
    "SANDBOX_INIT",
    "ProcessSpec",
    "build_config",
    "sandbox_environment",
]

MASKED_PATHS = (
    "/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
    "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)  # fmt: skip
SANDBOX_HOSTNAME = "sandbox"
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
_NAMESPACES = ("pid", "mount", "ipc", "uts", "network", "cgroup")
_CAPABILITY_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHM_MAX = 64 << 20
LAUNCH_DIR = "/run/agentos/launch"
"""Where a pre-created (pooled) sandbox reads the command it will run, read-only."""
KERNEL_SOCKET = "/run/agentos/kernel.sock"
"""Where a sandboxed process finds the kernel socket that speaks for it alone."""
KERNEL_PYTHON = "/run/agentos/python"
"""Where a sandboxed process finds the kernel's client module for Python (read-only)."""
SANDBOX_INIT = "/usr/bin/tini-static"
"""PID 1 of every sandbox (from the host's /usr): it forwards signals to the command, which
as PID 1 itself would ignore any it has no handler for, and reaps orphaned children."""


@dataclass(frozen=True)
class ProcessSpec:
    """What to run inside the sandbox.

    Attributes:
        argv: the program and its arguments; the program is looked up in PATH.
        env: variables on top of the sandbox's defaults (PATH, HOME, LANG, TMPDIR).
        cwd: working directory inside the sandbox; /data if it has one, else /tmp.
    """

    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None

    def __post_init__(self) -> None:
        if not self.argv or not self.argv[0]:
            msg = "a sandbox needs a command to run"
            raise InvalidArgumentError(msg)
        if any("\0" in arg for arg in self.argv):
            msg = "command arguments must not contain NUL bytes"
            raise InvalidArgumentError(msg)
        for name, value in self.env.items():
            if not _ENV_NAME.match(name) or "\0" in value:
                msg = f"invalid environment variable {name!r}"
                raise InvalidArgumentError(msg)
        if self.cwd is not None and not PurePosixPath(self.cwd).is_absolute():
            msg = f"working directory must be absolute: {self.cwd!r}"
            raise InvalidArgumentError(msg)


def sandbox_environment(process: ProcessSpec, *, home: str) -> dict[str, str]:
    """A sandboxed command's environment: the defaults, then the process's own variables."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
        "HOME": home,
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",  # noqa: S108 - inside the sandbox
    }
    env.update(process.env)
    return env


def _mount(destination: str, kind: str, source: str, *options: str) -> dict[str, Any]:
    return {"destination": destination, "type": kind, "source": source, "options": list(options)}


def _mounts(
    policy: Policy,
    host: HostLayout,
    data: Path | None,
    launch: Path | None,
    kernel_socket: Path | None,
    python_lib: Path | None,
    *,
    tmp_uid: int,
    tmp_gid: int,
) -> list[dict[str, Any]]:
    tmpfs = policy.limits.tmpfs
    shm = min(_SHM_MAX, tmpfs)
    dev = ("nosuid", "noexec", "strictatime", "mode=755", "size=65536k")
    pts = ("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620")
    mounts = [
        _mount("/proc", "proc", "proc", "nosuid", "noexec", "nodev"),
        _mount("/dev", "tmpfs", "tmpfs", *dev),
        _mount("/dev/pts", "devpts", "devpts", *pts),
        _mount("/dev/shm", "tmpfs", "shm", "nosuid", "noexec", "nodev", "mode=1777", f"size={shm}"),  # noqa: S108
        _mount("/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev"),
        _mount("/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", "ro"),
        _mount("/sys/fs/cgroup", "cgroup", "cgroup", "nosuid", "noexec", "nodev", "relatime", "ro"),
        _mount("/tmp", "tmpfs", "tmpfs", "nosuid", "nodev", "mode=1777", f"size={tmpfs}",  # noqa: S108
               f"uid={tmp_uid}", f"gid={tmp_gid}"),
        *host_mounts(host),
    ]  # fmt: skip
    if data is not None:
        mounts.append(_mount("/data", "bind", os.fspath(data), "rbind", "rw", "nosuid", "nodev"))
    if launch is not None:
        mounts.append(
            _mount(LAUNCH_DIR, "bind", os.fspath(launch), "rbind", "ro", "nosuid", "nodev")
        )
    if kernel_socket is not None:  # read-only: connect(2) on a socket needs no writable mount
        mounts.append(
            _mount(KERNEL_SOCKET, "bind", os.fspath(kernel_socket), "bind", "ro", "nosuid", "nodev")
        )
    if python_lib is not None:
        mounts.append(
            _mount(KERNEL_PYTHON, "bind", os.fspath(python_lib), "rbind", "ro", "nosuid", "nodev")
        )
    mounts += [
        _mount(str(m.destination), "bind", str(m.source), "rbind", "ro", "nosuid", "nodev")
        for m in policy.mounts
    ]
    return mounts


def _resources(policy: Policy, cgroup_mode: CgroupMode) -> dict[str, Any]:
    limits = policy.limits
    memory: dict[str, Any] = {"limit": limits.memory, "swap": limits.memory}  # no swap
    resources: dict[str, Any] = {
        "memory": memory,
        "cpu": {"quota": Resources(cpu_max=limits.cpus).cpu_quota_us, "period": CPU_PERIOD_US},
        "pids": {"limit": limits.pids},
        "devices": [{"allow": False, "access": "rwm"}],
    }
    if limits.memory_high is not None:
        if cgroup_mode is CgroupMode.V2:
            resources["unified"] = {"memory.high": str(limits.memory_high)}
        else:  # v1 has no memory.high: the soft limit is the closest it offers
            memory["reservation"] = limits.memory_high
    return resources


def build_config(  # noqa: PLR0913 - each keyword is one input of the config
    *,
    cgroup: str,
    process: ProcessSpec,
    policy: Policy,
    uid: int,
    gid: int,
    host: HostLayout,
    cgroup_mode: CgroupMode,
    data: Path | None = None,
    groups: Sequence[int] = (),
    launch: Path | None = None,
    kernel_socket: Path | None = None,
    python_lib: Path | None = None,
) -> dict[str, Any]:
    """The ``config.json`` for one sandbox whose rootfs is the bundle's ``rootfs/``.

    Args:
        cgroup: the sandbox's cgroup, below every hierarchy's root (``parent/id``).
        process: what to run.
        policy: limits and mounts.
        uid: the sandbox's own non-root uid.
        gid: the sandbox's own non-root gid.
        host: how the host lays out /usr.
        cgroup_mode: where memory.high can be set.
        data: a host directory shown read-write at /data.
        groups: supplementary groups (non-root), e.g. the group sharing ``data``.
        launch: a host directory shown read-only at :data:`LAUNCH_DIR` (pooled sandboxes).
        kernel_socket: the host side of the process's kernel socket, shown at
            :data:`KERNEL_SOCKET`.
        python_lib: a host directory shown read-only at :data:`KERNEL_PYTHON`.
    """
    if uid <= 0 or gid <= 0 or any(group <= 0 for group in groups):
        msg = "a sandbox never runs as root"
        raise InvalidArgumentError(msg)
    home = "/data" if data is not None else "/tmp"  # noqa: S108 - inside the sandbox
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": uid, "gid": gid, "additionalGids": list(groups)},
            "args": [SANDBOX_INIT, "--", *process.argv],
            "env": [f"{k}={v}" for k, v in sandbox_environment(process, home=home).items()],
            "cwd": process.cwd or home,
            "noNewPrivileges": True,
            "capabilities": {name: [] for name in _CAPABILITY_SETS},
            "rlimits": [
                {
                    "type": "RLIMIT_NOFILE",
                    "hard": policy.limits.nofile,
                    "soft": policy.limits.nofile,
                },
                {"type": "RLIMIT_CORE", "hard": 0, "soft": 0},
            ],
            "oomScoreAdj": 500,  # under host memory pressure, sandboxes go first
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": SANDBOX_HOSTNAME,
        "mounts": _mounts(
            policy, host, data, launch, kernel_socket, python_lib, tmp_uid=uid, tmp_gid=gid
        ),
        "linux": {
            "cgroupsPath": "/" + cgroup,
            "namespaces": [{"type": name} for name in _NAMESPACES],
            "resources": _resources(policy, cgroup_mode),
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
            "rootfsPropagation": "rprivate",
            "seccomp": dict(sandbox_seccomp()),
        },
    }
