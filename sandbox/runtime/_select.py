"""Choosing a runtime: ``runc`` (default), ``crun`` (pure cgroup v2 only), or ``auto``."""

from __future__ import annotations

import logging
import os
import shutil
import socket
from pathlib import Path

import docker
import docker.errors

from sandbox.cgroups import CgroupManager, CgroupMode
from sandbox.oci.spec import SANDBOX_INIT
from sandbox.policy import RuntimeName
from sandbox.runtime._base import Runtime
from sandbox.runtime._docker import DockerRuntime
from sandbox.runtime._oci import OciRuntime
from sandbox.runtime._types import RuntimeUnavailableError

__all__ = ["open_runtime", "runtime_problem", "unix_socket_answers"]

logger = logging.getLogger("agentos.sandbox.runtime")

_DEFAULT_DOCKER = "unix:///var/run/docker.sock"


def _docker_client(docker_url: str | None) -> docker.DockerClient:
    if docker_url:
        return docker.DockerClient(base_url=docker_url, timeout=60)
    return docker.from_env(timeout=60)


def unix_socket_answers(path: Path | str) -> bool:
    """Whether something accepts connections on a Unix socket (a path or ``unix://`` URL)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path).removeprefix("unix://"))
        except OSError:
            return False
        return True


def _docker_problem(docker_url: str | None) -> str | None:
    url = docker_url or os.environ.get("DOCKER_HOST") or _DEFAULT_DOCKER
    # Asked directly first: the SDK's client leaks a socket when made for a dead engine.
    if url.startswith("unix://") and not unix_socket_answers(url):
        return f"no Docker Engine answers at {url}"
    try:
        client = _docker_client(docker_url)
        client.ping()
        client.close()
    except docker.errors.DockerException as exc:
        return f"no Docker Engine answers at {url} ({exc})"
    return None


def _oci_problem(name: RuntimeName, cgroups: CgroupManager) -> str | None:
    if shutil.which(name.value) is None:
        return f"{name.value} is not installed (apt-get install {name.value})"
    if not Path(SANDBOX_INIT).is_file():
        return f"the sandbox init {SANDBOX_INIT} is missing (apt-get install tini)"
    if name is RuntimeName.CRUN and cgroups.mode is not CgroupMode.V2:
        return (
            f"crun does not support {cgroups.mode.value} cgroup hosts "
            f"({cgroups.layout.describe()}); it needs pure cgroup v2"
        )
    return None


def runtime_problem(
    name: RuntimeName, cgroups: CgroupManager, *, docker_url: str | None = None
) -> str | None:
    """Why ``name`` cannot run sandboxes on this host, or None if it can."""
    if os.geteuid() != 0:
        return "sandboxes need root (the runtime creates namespaces, cgroups and mounts)"
    if name is RuntimeName.DOCKER:
        return _docker_problem(docker_url)
    return _oci_problem(name, cgroups)


def open_runtime(
    name: RuntimeName,
    state_dir: Path,
    *,
    cgroups: CgroupManager | None = None,
    docker_url: str | None = None,
) -> Runtime:
    """The runtime called ``name``; for ``auto``, runc, else crun, else Docker.

    Docker is found through ``docker_url``, else DOCKER_HOST, else its default socket.

    Raises:
        RuntimeUnavailableError: it cannot work here (for ``auto``: none can); the
            message says why for each candidate.
    """
    cgroups = cgroups or CgroupManager()
    candidates = (
        [RuntimeName.RUNC, RuntimeName.CRUN, RuntimeName.DOCKER]
        if name is RuntimeName.AUTO
        else [name]
    )
    problems: list[str] = []
    for candidate in candidates:
        problem = runtime_problem(candidate, cgroups, docker_url=docker_url)
        if problem is None:
            if name is RuntimeName.AUTO:
                skipped = "; ".join(problems) or "it is the first choice"
                logger.info("runtime auto: chose %s (%s)", candidate.value, skipped)
            if candidate is RuntimeName.DOCKER:
                return DockerRuntime(_docker_client(docker_url), state_dir, cgroups=cgroups)
            binary = Path(shutil.which(candidate.value) or candidate.value)
            return OciRuntime(binary, state_dir, cgroups=cgroups)
        problems.append(f"{candidate.value}: {problem}")
    raise RuntimeUnavailableError("no container runtime can run here: " + "; ".join(problems))
