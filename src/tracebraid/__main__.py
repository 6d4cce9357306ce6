"""``python -m tracebraid`` runs the command-line interface."""

from tracebraid.views.cli import main

raise SystemExit(main())
