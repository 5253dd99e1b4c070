import signal

import pytest

from kernel.abi import ErrorCode, SyscallExhaustedError, SyscallNotFoundError
from kernel.abi.process import ExitReason, ProcessState
from kernel.proc import KERNEL_PID, IllegalTransitionError, ProcessTable
from sandbox.capabilities import Capability, Grant


def make_table(**kwargs):
    clock = iter(range(1000, 2000))
    return ProcessTable(clock=lambda: float(next(clock)), **kwargs)


def test_spawn_assigns_increasing_pids_and_links_parents():
    table = make_table()
    parent = table.spawn(name="notes", ppid=KERNEL_PID, capabilities=[Grant(Capability.READ_FILE)])
    child = table.spawn(name="helper", ppid=parent.pid, app_id="notes")
    assert (parent.pid, child.pid) == (1, 2)
    assert parent.children == {2}
    assert child.ppid == parent.pid
    info = parent.info()
    assert info.state is ProcessState.RUNNING
    assert info.capabilities == [Grant(Capability.READ_FILE)]
    assert info.created_at == 1000.0


def test_spawn_under_a_missing_parent_is_esrch():
    with pytest.raises(SyscallNotFoundError) as info:
        make_table().spawn(name="orphan", ppid=42)
    assert info.value.code == ErrorCode.ESRCH


def test_the_table_has_a_capacity():
    table = make_table(max_processes=2)
    table.spawn(name="a", ppid=KERNEL_PID)
    table.spawn(name="b", ppid=KERNEL_PID)
    with pytest.raises(SyscallExhaustedError):
        table.spawn(name="c", ppid=KERNEL_PID)


def test_descendants_come_deepest_first():
    table = make_table()
    root = table.spawn(name="root", ppid=KERNEL_PID)
    child = table.spawn(name="child", ppid=root.pid)
    grandchild = table.spawn(name="grandchild", ppid=child.pid)
    table.spawn(name="bystander", ppid=KERNEL_PID)
    assert [p.pid for p in table.descendants(root.pid)] == [grandchild.pid, child.pid]


def test_an_exit_is_recorded_frees_the_slot_and_hands_children_to_the_kernel():
    table = make_table()
    parent = table.spawn(name="parent", ppid=KERNEL_PID)
    child = table.spawn(name="child", ppid=parent.pid, detached=True)
    table.mark_exited(parent, reason=ExitReason.KILLED, term_signal=signal.SIGKILL)
    assert parent.ended.is_set()
    info = table.find(parent.pid).info()
    assert (info.state, info.exit_reason, info.term_signal) == (
        ProcessState.EXITED, ExitReason.KILLED, signal.SIGKILL
    )  # fmt: skip
    assert [p.pid for p in table.live()] == [child.pid]
    assert child.ppid == KERNEL_PID
    with pytest.raises(SyscallNotFoundError):
        table.get(parent.pid)  # no longer live


def test_an_exited_child_leaves_its_parent():
    table = make_table()
    parent = table.spawn(name="parent", ppid=KERNEL_PID)
    child = table.spawn(name="child", ppid=parent.pid)
    table.mark_exited(child, reason=ExitReason.EXITED, exit_code=0)
    assert parent.children == set()
    assert len(table) == 1


def test_only_the_latest_exits_are_kept():
    table = make_table(keep_exited=2)
    first, second, third = (table.spawn(name=n, ppid=KERNEL_PID) for n in "abc")
    for process in (first, second, third):
        table.mark_exited(process, reason=ExitReason.EXITED, exit_code=0)
    with pytest.raises(SyscallNotFoundError):
        table.find(first.pid)
    assert table.find(third.pid) is third


def test_pids_are_not_reused():
    table = make_table()
    first = table.spawn(name="a", ppid=KERNEL_PID)
    table.mark_exited(first, reason=ExitReason.EXITED, exit_code=0)
    assert table.spawn(name="b", ppid=KERNEL_PID).pid == first.pid + 1


def test_states_follow_their_transitions():
    table = make_table()
    process = table.spawn(name="a", ppid=KERNEL_PID)
    process.move(ProcessState.SUSPENDED)
    process.move(ProcessState.RUNNING)
    table.mark_exited(process, reason=ExitReason.EXITED, exit_code=0)
    for state in ProcessState:
        with pytest.raises(IllegalTransitionError):
            process.move(state)
    with pytest.raises(IllegalTransitionError):
        table.mark_exited(process, reason=ExitReason.EXITED, exit_code=0)


def test_is_within_follows_parent_links():
    table = make_table()
    a = table.spawn(name="a", ppid=KERNEL_PID)
    b = table.spawn(name="b", ppid=a.pid)
    c = table.spawn(name="c", ppid=KERNEL_PID)
    assert table.is_within(b.pid, a.pid)
    assert table.is_within(a.pid, a.pid)
    assert table.is_within(b.pid, KERNEL_PID)
    assert not table.is_within(a.pid, b.pid)
    assert not table.is_within(c.pid, a.pid)
    assert not table.is_within(999, a.pid)
