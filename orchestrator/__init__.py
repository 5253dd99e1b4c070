"""The web tier: REST and WebSocket API, the desktop, admin REST, and the ``agentos`` CLI.

It holds no privilege and reaches the kernel only through ``kernel.client``.
"""
