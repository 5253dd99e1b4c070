"""The kernel's syscall ABI: framing, envelopes, error codes and the call catalog.

Shared by the kernel (server side) and ``kernel.client``. See DESIGN 3.2.
"""

from kernel.abi import environ as environ
from kernel.abi import events as events
from kernel.abi import files as files
from kernel.abi import ipc as ipc
from kernel.abi import memory as memory
from kernel.abi import net as net
from kernel.abi import policy as policy
from kernel.abi import process as process
from kernel.abi import sched as sched
from kernel.abi import system as system
from kernel.abi._catalog import CallSpec as CallSpec
from kernel.abi._catalog import Catalog as Catalog
from kernel.abi._catalog import WireEnum as WireEnum
from kernel.abi._catalog import WireModel as WireModel
from kernel.abi._errors import ErrorCode as ErrorCode
from kernel.abi._errors import SyscallError as SyscallError
from kernel.abi._errors import SyscallExhaustedError as SyscallExhaustedError
from kernel.abi._errors import SyscallExistsError as SyscallExistsError
from kernel.abi._errors import SyscallInvalidArgumentError as SyscallInvalidArgumentError
from kernel.abi._errors import SyscallNotFoundError as SyscallNotFoundError
from kernel.abi._errors import SyscallPermissionError as SyscallPermissionError
from kernel.abi._errors import SyscallPreconditionError as SyscallPreconditionError
from kernel.abi._errors import SyscallTimeoutError as SyscallTimeoutError
from kernel.abi._errors import SyscallUnavailableError as SyscallUnavailableError
from kernel.abi._errors import SyscallUnsupportedError as SyscallUnsupportedError
from kernel.abi._errors import error_code as error_code
from kernel.abi._errors import syscall_error as syscall_error
from kernel.abi._framing import DEFAULT_MAX_FRAME_BYTES as DEFAULT_MAX_FRAME_BYTES
from kernel.abi._framing import MAX_CONTAINER_ITEMS as MAX_CONTAINER_ITEMS
from kernel.abi._framing import FrameDecoder as FrameDecoder
from kernel.abi._framing import FrameTooLargeError as FrameTooLargeError
from kernel.abi._framing import MalformedFrameError as MalformedFrameError
from kernel.abi._framing import decode_payload as decode_payload
from kernel.abi._framing import encode_frame as encode_frame
from kernel.abi._messages import MalformedRequestError as MalformedRequestError
from kernel.abi._messages import Reply as Reply
from kernel.abi._messages import Request as Request
from kernel.abi._messages import error_reply as error_reply
from kernel.abi._messages import item_reply as item_reply
from kernel.abi._messages import ok_reply as ok_reply
from kernel.abi._messages import parse_reply as parse_reply
from kernel.abi._messages import parse_request as parse_request

CATALOG = Catalog.of(
    system.SPECS,
    environ.SPECS,
    process.SPECS,
    events.SPECS,
    files.SPECS,
    ipc.SPECS,
    memory.SPECS,
    sched.SPECS,
    policy.SPECS,
    net.SPECS,
)
"""Every syscall the kernel offers."""

__all__ = [
    "CATALOG",
    "DEFAULT_MAX_FRAME_BYTES",
    "MAX_CONTAINER_ITEMS",
    "CallSpec",
    "Catalog",
    "ErrorCode",
    "FrameDecoder",
    "FrameTooLargeError",
    "MalformedFrameError",
    "MalformedRequestError",
    "Reply",
    "Request",
    "SyscallError",
    "SyscallExhaustedError",
    "SyscallExistsError",
    "SyscallInvalidArgumentError",
    "SyscallNotFoundError",
    "SyscallPermissionError",
    "SyscallPreconditionError",
    "SyscallTimeoutError",
    "SyscallUnavailableError",
    "SyscallUnsupportedError",
    "WireEnum",
    "WireModel",
    "decode_payload",
    "encode_frame",
    "environ",
    "error_code",
    "error_reply",
    "events",
    "item_reply",
    "ok_reply",
    "parse_reply",
    "parse_request",
    "process",
    "syscall_error",
    "system",
]
