"""Container runtimes behind one interface.

create, start, exec, signal, kill, wait, stats, delete, and reconcile after a restart.
"""

from sandbox.runtime._base import Container as Container
from sandbox.runtime._base import Runtime as Runtime
from sandbox.runtime._base import new_sandbox_id as new_sandbox_id
from sandbox.runtime._docker import DockerContainer as DockerContainer
from sandbox.runtime._docker import DockerRuntime as DockerRuntime
from sandbox.runtime._docker_image import BASE_IMAGE as BASE_IMAGE
from sandbox.runtime._oci import OciContainer as OciContainer
from sandbox.runtime._oci import OciRuntime as OciRuntime
from sandbox.runtime._oci_cli import Stdio as Stdio
from sandbox.runtime._reaper import become_subreaper as become_subreaper
from sandbox.runtime._select import open_runtime as open_runtime
from sandbox.runtime._select import runtime_problem as runtime_problem
from sandbox.runtime._select import unix_socket_answers as unix_socket_answers
from sandbox.runtime._types import ContainerState as ContainerState
from sandbox.runtime._types import ExitStatus as ExitStatus
from sandbox.runtime._types import IllegalTransitionError as IllegalTransitionError
from sandbox.runtime._types import Outcome as Outcome
from sandbox.runtime._types import RuntimeFailedError as RuntimeFailedError
from sandbox.runtime._types import RuntimeUnavailableError as RuntimeUnavailableError
from sandbox.runtime._uids import UID_BASE as UID_BASE
from sandbox.runtime._uids import UID_COUNT as UID_COUNT
from sandbox.runtime._uids import UidAllocator as UidAllocator
from sandbox.runtime._volumes import VolumeError as VolumeError
from sandbox.runtime._volumes import close_shared_volume as close_shared_volume
from sandbox.runtime._volumes import open_shared_volume as open_shared_volume

__all__ = [
    "BASE_IMAGE",
    "UID_BASE",
    "UID_COUNT",
    "Container",
    "ContainerState",
    "DockerContainer",
    "DockerRuntime",
    "ExitStatus",
    "IllegalTransitionError",
    "OciContainer",
    "OciRuntime",
    "Outcome",
    "Runtime",
    "RuntimeFailedError",
    "RuntimeUnavailableError",
    "Stdio",
    "UidAllocator",
    "VolumeError",
    "become_subreaper",
    "close_shared_volume",
    "new_sandbox_id",
    "open_runtime",
    "open_shared_volume",
    "runtime_problem",
    "unix_socket_answers",
]
