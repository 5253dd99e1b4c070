from sandbox.oci.seccomp import (
    DENIED_SYSCALLS,
    compile_profile,
    docker_default_profile,
    sandbox_seccomp,
)

SYNTHETIC = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
    "syscalls": [
        {"names": ["read", "write", "ptrace"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["arch_only"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
        {"names": ["needs_cap"], "action": "SCMP_ACT_ALLOW",
         "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["new_kernel"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "9.1"}},
        {"names": ["no_cap"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        {"names": ["masked"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
    ],
}  # fmt: skip


def allowed(section):
    return {
        n
        for rule in section["syscalls"]
        if rule["action"] == "SCMP_ACT_ALLOW"
        for n in rule["names"]
    }


def test_conditions_are_evaluated_for_this_machine_and_no_capabilities():
    section = compile_profile(SYNTHETIC, arch="amd64", kernel=(6, 1), denied={"ptrace"})
    assert allowed(section) == {"read", "write", "no_cap", "masked"}
    assert section["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
    assert section["defaultAction"] == "SCMP_ACT_ERRNO"
    (clone3,) = [r for r in section["syscalls"] if r["names"] == ["clone3"]]
    assert clone3["errnoRet"] == 38
    (masked,) = [r for r in section["syscalls"] if r["names"] == ["masked"]]
    assert masked["args"][0]["value"] == 1


def test_capabilities_and_kernels_open_their_rules():
    section = compile_profile(
        SYNTHETIC, arch="arm64", capabilities={"CAP_SYS_ADMIN"}, kernel=(9, 2), denied=()
    )
    assert {"arch_only", "needs_cap", "new_kernel", "ptrace"} <= allowed(section)
    assert "no_cap" not in allowed(section)


def test_the_sandbox_filter_is_an_allowlist_without_the_denied_calls():
    section = sandbox_seccomp()
    assert section["defaultAction"] == "SCMP_ACT_ERRNO"
    assert "SCMP_ARCH_X86_64" in section["architectures"]
    names = allowed(section)
    assert not names & DENIED_SYSCALLS
    assert {"read", "write", "openat", "execve", "exit_group", "futex"} <= names


def test_it_is_at_least_as_strict_as_dockers_default():
    # Everything we allow, Docker's default allows a container with no capabilities.
    ours = allowed(sandbox_seccomp())
    docker = allowed(
        compile_profile(docker_default_profile(), arch="amd64", kernel=(99, 0), denied=())
    )
    assert ours <= docker
    assert len(docker - ours) >= len({"ptrace", "process_vm_readv", "process_vm_writev"})


def test_clone_is_allowed_only_without_namespace_flags():
    rules = [r for r in sandbox_seccomp()["syscalls"] if r["names"] == ["clone"]]
    assert len(rules) == 1
    (arg,) = rules[0]["args"]
    clone_newuser, clone_newns, clone_newnet = 0x10000000, 0x00020000, 0x40000000
    assert arg["op"] == "SCMP_CMP_MASKED_EQ"
    for flag in (clone_newuser, clone_newns, clone_newnet):
        assert arg["value"] & flag
