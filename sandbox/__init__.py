"""Constrained containers for app processes, and the vocabulary every layer shares.

Public modules: ``sandbox.errors`` (the error taxonomy), ``sandbox.capabilities`` (what a
process may be granted), ``sandbox.fsutil`` (crash-safe writes), and
:func:`installed_version`. This package imports nothing from the rest of AgentOS.
"""

from importlib import metadata

__all__ = ["installed_version"]


def installed_version() -> str:
    """The installed AgentOS distribution's version (``0+unknown`` when not installed)."""
    try:
        return metadata.version("agentos")
    except metadata.PackageNotFoundError:
        return "0+unknown"
