"""``python -m orchestrator.cli``: the same as the ``agentos`` command."""

from orchestrator.cli import main

raise SystemExit(main())
