"""Constrained containers for app processes, and the vocabulary every layer shares.

Public modules: ``sandbox.errors`` (the error taxonomy), ``sandbox.capabilities`` (what a
process may be granted), ``sandbox.fsutil`` (crash-safe writes). This package imports
nothing from the rest of AgentOS.
"""
