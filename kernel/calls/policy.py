"""Handlers of ``policy.*``: anyone with ``system_info`` reads, the administrators write."""

from __future__ import annotations

from kernel.abi.policy import (
    POLICY_DELETE,
    POLICY_GET,
    POLICY_LIST,
    POLICY_PUT,
    PolicyEntry,
    PolicyListResult,
    PolicyNameArgs,
    PolicyPutArgs,
    PolicyPutResult,
)
from kernel.abi.system import NoArgs
from kernel.calls._table import CallContext, CallTable
from kernel.policies import PolicyStore
from sandbox.policy import BUILTIN_POLICIES, Policy

__all__ = ["PolicyCalls"]


class PolicyCalls:
    """The policies of a :class:`PolicyStore`, over the call table."""

    def __init__(self, store: PolicyStore) -> None:
        self.store = store

    def bind(self, table: CallTable) -> None:
        """Implement the calls in ``table``."""
        table.bind(POLICY_LIST, self.list)
        table.bind(POLICY_GET, self.get)
        table.bind(POLICY_PUT, self.put)
        table.bind(POLICY_DELETE, self.delete)

    def _entry(self, policy: Policy) -> PolicyEntry:
        return PolicyEntry(
            name=policy.name, builtin=policy.name in BUILTIN_POLICIES,
            in_use=self.store.in_use(policy.name), policy=policy.model_dump(mode="json"),
        )  # fmt: skip

    async def list(self, _ctx: CallContext, _args: NoArgs) -> PolicyListResult:
        """``policy.list``."""
        return PolicyListResult(policies=[self._entry(policy) for policy, _ in self.store.all()])

    async def get(self, _ctx: CallContext, args: PolicyNameArgs) -> PolicyEntry:
        """``policy.get``: ENOENT if there is none of that name."""
        return self._entry(self.store.get(args.name))

    async def put(self, ctx: CallContext, args: PolicyPutArgs) -> PolicyPutResult:
        """``policy.put``: validated, then kept (and written to disk) before the answer."""
        ctx.require_admin()
        policy = self.store.parse(args.policy)
        created = await self.store.put(policy, create_only=args.create_only)
        return PolicyPutResult(created=created, entry=self._entry(policy))

    async def delete(self, ctx: CallContext, args: PolicyNameArgs) -> PolicyEntry:
        """``policy.delete``: EBUSY while a live process runs under it."""
        ctx.require_admin()
        entry = self._entry(self.store.get(args.name))
        await self.store.delete(args.name)
        return entry.model_copy(update={"in_use": 0})
