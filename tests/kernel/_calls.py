"""Calling a kernel's call table directly, as the admin or as a process."""

import pytest
import trio
import trio.testing

from kernel.abi import Request, SyscallError
from kernel.calls import Caller
from kernel.proc import KERNEL_PID
from sandbox.capabilities import Grant

ADMIN = Caller(pid=KERNEL_PID, uid=0, os_pid=1, capabilities=None)


def as_process(pid, *grants):
    """A caller acting as ``pid`` with ``grants`` (capabilities, or ``name:/path`` text)."""
    held = frozenset(g if isinstance(g, Grant) else Grant.parse(str(g)) for g in grants)
    return Caller(pid=pid, uid=1000, os_pid=2, capabilities=held)


async def no_emit(_item):
    raise AssertionError("not a streaming call")


async def dispatch(kernel, caller, call, *, emit=no_emit, **args):
    return await kernel.calls.dispatch(caller, Request(id=1, call=call, args=args), emit)


async def code_of(kernel, caller, call, **args):
    """The error code ``call`` fails with (it must fail)."""
    with pytest.raises(SyscallError) as failure:
        await dispatch(kernel, caller, call, **args)
    return failure.value.code


async def code_when(kernel, caller, call, meanwhile, **args):
    """The error code ``call`` fails with when ``meanwhile()`` runs while it waits."""
    codes = []

    async def waiter():
        codes.append(await code_of(kernel, caller, call, **args))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        await meanwhile()
    return codes[0]
