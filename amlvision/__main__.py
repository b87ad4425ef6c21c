"""Allow ``python -m amlvision``."""

from amlvision.cli import main

raise SystemExit(main())
