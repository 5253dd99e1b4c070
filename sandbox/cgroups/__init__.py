"""cgroups v2 and v1: limits, statistics, freezing and killing, for any runtime.

Detects pure v2, hybrid (v1 controllers beside an empty v2, as on this CI host) and v1,
and offers one interface over them. The root is injectable: unit tests run the code on
fake trees, integration tests on the host's hierarchy (and on pure v2 in a VM).
"""

from sandbox.cgroups._base import Cgroup as Cgroup
from sandbox.cgroups._manager import DEFAULT_ROOT as DEFAULT_ROOT
from sandbox.cgroups._manager import CgroupLayout as CgroupLayout
from sandbox.cgroups._manager import CgroupManager as CgroupManager
from sandbox.cgroups._manager import detect_layout as detect_layout
from sandbox.cgroups._types import CPU_PERIOD_US as CPU_PERIOD_US
from sandbox.cgroups._types import CgroupError as CgroupError
from sandbox.cgroups._types import CgroupMode as CgroupMode
from sandbox.cgroups._types import CgroupStats as CgroupStats
from sandbox.cgroups._types import Resources as Resources
from sandbox.cgroups._types import weight_to_shares as weight_to_shares
from sandbox.cgroups._v1 import V1Cgroup as V1Cgroup
from sandbox.cgroups._v2 import V2Cgroup as V2Cgroup

__all__ = [
    "CPU_PERIOD_US",
    "DEFAULT_ROOT",
    "Cgroup",
    "CgroupError",
    "CgroupLayout",
    "CgroupManager",
    "CgroupMode",
    "CgroupStats",
    "Resources",
    "V1Cgroup",
    "V2Cgroup",
    "detect_layout",
    "weight_to_shares",
]
