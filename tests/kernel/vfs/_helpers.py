import pytest

from kernel.abi import SyscallError


async def code_of(call):
    """The error code a call fails with (it must fail)."""
    with pytest.raises(SyscallError) as failure:
        await call
    return failure.value.code
