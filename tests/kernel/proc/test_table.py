import signal

import pytest

from kernel.abi import ErrorCode, SyscallExhaustedError, SyscallNotFoundError
from kernel.abi.process import ProcessState
from kernel.proc import KERNEL_PID, IllegalTransitionError, ProcessTable
from sandbox.capabilities import Capability


def make_table(**kwargs):
    clock = iter(range(1000, 2000))
    return ProcessTable(clock=lambda: float(next(clock)), **kwargs)


def test_spawn_assigns_increasing_pids_and_links_parents():
    table = make_table()
    parent = table.spawn(name="notes", ppid=KERNEL_PID, capabilities=[Capability.READ_FILE])
    child = table.spawn(name="helper", ppid=parent.pid, app_id="notes")
    assert (parent.pid, child.pid) == (1, 2)
    assert parent.children == {2}
    assert child.ppid == parent.pid
    info = parent.info()
    assert info.state is ProcessState.RUNNING
    assert info.capabilities == [Capability.READ_FILE]
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


def test_kill_takes_descendants_deepest_first_and_frees_the_slots():
    table = make_table()
    root = table.spawn(name="root", ppid=KERNEL_PID)
    child = table.spawn(name="child", ppid=root.pid)
    grandchild = table.spawn(name="grandchild", ppid=child.pid)
    bystander = table.spawn(name="bystander", ppid=KERNEL_PID)
    ended = table.kill(root.pid)
    assert [p.pid for p in ended] == [grandchild.pid, child.pid, root.pid]
    assert all(p.state is ProcessState.EXITED for p in ended)
    assert all(p.term_signal == signal.SIGKILL for p in ended)
    assert [p.pid for p in table.live()] == [bystander.pid]


def test_killing_a_child_detaches_it_from_its_parent():
    table = make_table()
    parent = table.spawn(name="parent", ppid=KERNEL_PID)
    child = table.spawn(name="child", ppid=parent.pid)
    table.kill(child.pid)
    assert parent.children == set()
    assert len(table) == 1


def test_pids_are_not_reused():
    table = make_table()
    first = table.spawn(name="a", ppid=KERNEL_PID)
    table.kill(first.pid)
    assert table.spawn(name="b", ppid=KERNEL_PID).pid == first.pid + 1


def test_an_exited_process_cannot_exit_again():
    table = make_table()
    process = table.spawn(name="a", ppid=KERNEL_PID)
    (ended,) = table.kill(process.pid)
    with pytest.raises(IllegalTransitionError):
        ended.mark_exited(at=0.0, exit_code=0, term_signal=None)


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
