"""Every call in the catalog is refused, before it acts, to a process without its capability."""

import pytest

from kernel.abi import CATALOG, ErrorCode, SyscallError
from kernel.client import open_kernel_client
from sandbox.capabilities import Capability

GUARDED = [spec for spec in CATALOG if spec.capability is not None]
OPEN = [spec for spec in CATALOG if spec.capability is None]


@pytest.fixture
async def kernel(running_kernel):
    async with open_kernel_client(running_kernel.socket) as client:
        yield client


def test_every_call_but_the_self_description_and_cancel_needs_a_capability():
    # sys.cancel reaches the caller's own requests on its own connection, nothing else.
    assert {spec.name for spec in OPEN} == {"sys.ping", "sys.calls", "sys.cancel"}


@pytest.mark.parametrize("spec", GUARDED, ids=lambda spec: spec.name)
async def test_a_call_is_denied_without_its_capability_and_counted(kernel, running_kernel, spec):
    everything_else = sorted(set(Capability) - {spec.capability})
    holder = await kernel.call("proc.spawn", {"name": "holder", "capabilities": everything_else})
    before = running_kernel.kernel.processes.live()
    with pytest.raises(SyscallError) as denied:
        # Arguments do not matter: the capability is checked before they are read.
        await kernel.call(spec.name, {"pid": holder["pid"]}, as_pid=holder["pid"])
    assert denied.value.code == ErrorCode.EPERM
    assert spec.capability in denied.value.message
    assert running_kernel.kernel.processes.live() == before  # nothing acted
    metrics = (await kernel.call("sys.metrics"))["text"]
    expected = (
        f'agentos_syscall_denials_total{{call="{spec.name}",capability="{spec.capability}"}} 1.0'
    )
    assert expected in metrics


@pytest.mark.parametrize("spec", OPEN, ids=lambda spec: spec.name)
async def test_the_open_calls_answer_a_process_without_capabilities(kernel, spec):
    bare = await kernel.call("proc.spawn", {"name": "bare"})
    assert bare["capabilities"] == []
    args = {"id": 12345} if spec.name == "sys.cancel" else {}
    assert await kernel.call(spec.name, args, as_pid=bare["pid"]) is not None
