"""sched.* through the call table: who may set what, and the weights it means."""

from kernel.abi import ErrorCode
from kernel.core import Kernel
from kernel.sched import BACKGROUND_CPUS, BACKGROUND_WEIGHT, priority_to_weight
from tests.kernel._calls import ADMIN, as_process, code_of, dispatch


async def test_only_the_administrators_set_the_policy_focus_and_background():
    kernel = Kernel()
    app = await dispatch(kernel, ADMIN, "proc.spawn", name="app")
    caller = as_process(app["pid"], "system_info", "scheduler_control")
    assert (await dispatch(kernel, caller, "sched.get_policy"))["policy"] == "priority"
    for call, args in [
        ("sched.set_policy", {"policy": "fair"}),
        ("sched.focus", {"pid": app["pid"]}),
        ("sched.background", {"pid": app["pid"], "background": True}),
    ]:
        assert await code_of(kernel, caller, call, **args) == ErrorCode.EPERM
    assert await code_of(kernel, ADMIN, "sched.focus", pid=999) == ErrorCode.ESRCH
    state = await dispatch(kernel, ADMIN, "sched.focus", pid=app["pid"])
    assert state == {
        "policy": "priority", "focused_pid": app["pid"], "background_pids": [], "turn_pid": None
    }  # fmt: skip
    await dispatch(kernel, ADMIN, "proc.kill", pid=app["pid"])
    assert (await dispatch(kernel, ADMIN, "sched.get_policy"))["focused_pid"] is None


async def test_weights_and_caps_follow_policy_focus_and_background():
    kernel = Kernel()
    scheduler = kernel.scheduler
    one = await dispatch(kernel, ADMIN, "proc.spawn", name="one", policy="standard")
    process = kernel.processes.get(one["pid"])
    process.priority = -3
    assert scheduler.weight(process) == priority_to_weight(-3)
    await dispatch(kernel, ADMIN, "sched.set_policy", policy="fair")
    assert scheduler.weight(process) == 100
    scheduler.focused = process.pid
    assert scheduler.weight(process) == 400
    scheduler.background.add(process.pid)
    assert (scheduler.weight(process), scheduler.cpu_max(process)) == (
        BACKGROUND_WEIGHT, BACKGROUND_CPUS
    )  # fmt: skip
    assert scheduler.cpu_max(process) <= process.policy.limits.cpus


async def test_turns_are_the_administrators_and_yields_need_a_running_container():
    kernel = Kernel()
    app = await dispatch(kernel, ADMIN, "proc.spawn", name="app")
    caller = as_process(app["pid"], "system_info", "scheduler_control", "time_access")
    assert await code_of(kernel, caller, "sched.next") == ErrorCode.EPERM
    assert await dispatch(kernel, ADMIN, "sched.next") == {
        "pid": None,
        "previous_pid": None,
        "policy": "priority",
    }  # fmt: skip  (no container runs: no one's turn)
    assert await dispatch(kernel, caller, "sched.current") == {"turn_pid": None, "on_cpu": []}
    assert await code_of(kernel, caller, "sched.yield", seconds=0.01) == ErrorCode.EINVAL
    assert await code_of(kernel, ADMIN, "sched.yield", seconds=0.01) == ErrorCode.EINVAL
    assert await code_of(kernel, caller, "sched.yield", seconds=60) == ErrorCode.EINVAL
    denied = as_process(app["pid"], "system_info")
    assert await code_of(kernel, denied, "sched.yield") == ErrorCode.EPERM
