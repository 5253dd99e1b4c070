"""The AgentOS kernel: syscall ABI and server, processes, capabilities (DESIGN 1, 3.2).

Everything outside the kernel reaches it through ``kernel.client``; this package file
imports nothing, so importing the client does not load the kernel's implementation.
The kernel itself is ``kernel.service.KernelService`` around ``kernel.core.Kernel``.
"""
