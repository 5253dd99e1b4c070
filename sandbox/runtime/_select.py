"""Choosing a runtime: ``runc`` (default), ``crun`` (pure cgroup v2 only), or ``auto``."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from sandbox.cgroups import CgroupManager, CgroupMode
from sandbox.oci.spec import SANDBOX_INIT
from sandbox.policy import RuntimeName
from sandbox.runtime._base import Runtime
from sandbox.runtime._oci import OciRuntime
from sandbox.runtime._types import RuntimeUnavailableError

__all__ = ["open_runtime", "runtime_problem"]

logger = logging.getLogger("agentos.sandbox.runtime")


def runtime_problem(name: RuntimeName, cgroups: CgroupManager) -> str | None:
    """Why ``name`` cannot run sandboxes on this host, or None if it can."""
    if os.geteuid() != 0:
        return "sandboxes need root (the runtime creates namespaces, cgroups and mounts)"
    if name is RuntimeName.DOCKER:
        return "the docker runtime is not available in this build yet"
    binary = shutil.which(name.value)
    if binary is None:
        return f"{name.value} is not installed (apt-get install {name.value})"
    if not Path(SANDBOX_INIT).is_file():
        return f"the sandbox init {SANDBOX_INIT} is missing (apt-get install tini)"
    if name is RuntimeName.CRUN and cgroups.mode is not CgroupMode.V2:
        return (
            f"crun does not support {cgroups.mode.value} cgroup hosts "
            f"({cgroups.layout.describe()}); it needs pure cgroup v2"
        )
    return None


def open_runtime(
    name: RuntimeName, state_dir: Path, *, cgroups: CgroupManager | None = None
) -> Runtime:
    """The runtime called ``name``; for ``auto``, runc, else crun, else Docker.

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
        problem = runtime_problem(candidate, cgroups)
        if problem is None:
            binary = Path(shutil.which(candidate.value) or candidate.value)
            if name is RuntimeName.AUTO:
                skipped = "; ".join(problems) or "it is the first choice"
                logger.info("runtime auto: chose %s (%s)", candidate.value, skipped)
            return OciRuntime(binary, state_dir, cgroups=cgroups)
        problems.append(f"{candidate.value}: {problem}")
    raise RuntimeUnavailableError("no container runtime can run here: " + "; ".join(problems))
