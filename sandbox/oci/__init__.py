"""OCI runtime bundles: the hardened ``config.json`` and the rootfs of every sandbox."""
