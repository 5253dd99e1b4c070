"""A web app against a real kernel on a real socket, for Quart's test client."""

from dataclasses import dataclass

import trio
from pydantic import SecretStr

from orchestrator.app import create_app
from orchestrator.auth import load_tokens
from orchestrator.config import OrchestratorSettings
from orchestrator.kernel_link import KernelLink

USER_TOKEN = "u" * 32
ADMIN_TOKEN = "a" * 32


@dataclass
class Web:
    client: object
    link: KernelLink

    def auth(self, token=USER_TOKEN):
        return {"Authorization": f"Bearer {token}"}


def make_settings(data_dir, **overrides):
    return OrchestratorSettings(
        data_dir=data_dir,
        token=SecretStr(USER_TOKEN),
        admin_token=SecretStr(ADMIN_TOKEN),
        **overrides,
    )


async def start_web(nursery, running_kernel, settings):
    link = KernelLink(running_kernel.socket, min_backoff=0.01, max_backoff=0.05)
    await nursery.start(link.run)
    with trio.fail_after(5):
        await link.wait_connected()
    tokens = load_tokens(settings.state_dir, user=settings.token, admin=settings.admin_token)
    return create_app(settings, link=link, tokens=tokens), link
