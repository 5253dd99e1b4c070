"""The seccomp filter of every sandbox: Docker's default allowlist, made stricter.

Docker's profile (data/docker-seccomp-default.json) allows about 360 syscalls outright
and more under conditions: the architecture, the capabilities the container holds, the
kernel version. We compile it for this machine with *no* capabilities, then take away
what a sandboxed app never needs and what has a record of kernel escapes.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["DENIED_SYSCALLS", "compile_profile", "docker_default_profile", "sandbox_seccomp"]

DENIED_SYSCALLS: frozenset[str] = frozenset(
    {
        # tracing and reading other processes
        "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
        # io_uring bypasses seccomp for the operations it queues
        "io_uring_setup", "io_uring_enter", "io_uring_register",
        "userfaultfd",  # a favourite of kernel exploits
        "keyctl", "add_key", "request_key",  # the kernel keyring is not namespaced
        "bpf", "perf_event_open",
        # mounts and namespaces
        "mount", "umount", "umount2", "mount_setattr", "move_mount", "open_tree",
        "fsopen", "fsmount", "fsconfig", "fspick", "pivot_root", "chroot",
        "unshare", "setns",
        # the host itself
        "reboot", "kexec_load", "kexec_file_load", "init_module", "finit_module",
        "delete_module", "swapon", "swapoff", "acct", "quotactl", "quotactl_fd",
        "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "syslog",
        "iopl", "ioperm", "vhangup", "lookup_dcookie",
        "sethostname", "setdomainname",
        "name_to_handle_at", "open_by_handle_at",
    }
)  # fmt: skip
"""Never allowed, whatever Docker's profile says. ``clone`` with namespace flags and
``clone3`` stay refused as Docker refuses them to a container without CAP_SYS_ADMIN."""

_ARCHES = {"x86_64": "amd64", "aarch64": "arm64"}


@cache
def docker_default_profile() -> Mapping[str, Any]:
    """Docker's default seccomp profile, as shipped."""
    text = resources.files("sandbox.oci").joinpath("data/docker-seccomp-default.json").read_text()
    profile: dict[str, Any] = json.loads(text)
    return profile


def _kernel_version(release: str) -> tuple[int, ...]:
    return tuple(int(part) for part in release.split("-", maxsplit=1)[0].split(".")[:2])


def compile_profile(
    profile: Mapping[str, Any],
    *,
    arch: str,
    capabilities: Iterable[str] = (),
    kernel: tuple[int, ...],
    denied: Iterable[str] = DENIED_SYSCALLS,
) -> dict[str, Any]:
    """Turn a Docker-format profile into an OCI ``linux.seccomp`` section.

    Args:
        profile: Docker's format (``archMap``, ``includes``/``excludes`` conditions).
        arch: Docker's name for the machine (``amd64``).
        capabilities: capabilities the container holds (``CAP_SYS_ADMIN``...).
        kernel: the host kernel's (major, minor).
        denied: syscalls to remove from every allow rule.
    """
    caps = set(capabilities)
    denied = frozenset(denied)
    architectures: list[str] = []
    for entry in profile.get("archMap", ()):
        if entry["architecture"] == f"SCMP_ARCH_{_oci_arch(arch)}":
            architectures = [entry["architecture"], *entry.get("subArchitectures", ())]
    rules: list[dict[str, Any]] = []
    for rule in profile["syscalls"]:
        if not _applies(rule, arch=arch, caps=caps, kernel=kernel):
            continue
        names = list(rule["names"])
        if rule["action"] == "SCMP_ACT_ALLOW":
            names = [name for name in names if name not in denied]
        if not names:
            continue
        compiled: dict[str, Any] = {"names": names, "action": rule["action"]}
        for key in ("args", "errnoRet"):
            if key in rule:
                compiled[key] = rule[key]
        rules.append(compiled)
    return {
        "defaultAction": profile["defaultAction"],
        "defaultErrnoRet": profile.get("defaultErrnoRet", 1),
        "architectures": architectures,
        "syscalls": rules,
    }


def _oci_arch(arch: str) -> str:
    return {"amd64": "X86_64", "arm64": "AARCH64"}.get(arch, arch.upper())


def _applies(
    rule: Mapping[str, Any], *, arch: str, caps: set[str], kernel: tuple[int, ...]
) -> bool:
    includes = rule.get("includes", {})
    excludes = rule.get("excludes", {})
    if "arches" in includes and arch not in includes["arches"]:
        return False
    if not set(includes.get("caps", ())) <= caps:
        return False
    if "minKernel" in includes and kernel < _kernel_version(includes["minKernel"]):
        return False
    if arch in excludes.get("arches", ()):
        return False
    return not set(excludes.get("caps", ())) & caps


@cache
def sandbox_seccomp() -> Mapping[str, Any]:
    """The filter for sandboxes on this machine: no capabilities, :data:`DENIED_SYSCALLS` out."""
    machine = platform.machine()
    return compile_profile(
        docker_default_profile(),
        arch=_ARCHES.get(machine, machine),
        kernel=_kernel_version(os.uname().release),
    )
