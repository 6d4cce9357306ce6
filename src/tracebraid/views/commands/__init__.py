"""The operator commands: ``demo``, ``show``, ``why``, ``pending``, ``retries``, ``latency``,
``export``. Each module has ``register(subparsers)``; ``tracebraid.views.cli`` lists them.

Exit codes, the same for every command: 0 the answer was printed; 1 nothing matches
the key asked for, or the answer holds findings (``pending``: a lost branch;
``retries``: a dead letter or a branch that never succeeded); 2 a usage error (bad
option, bad store URL, missing store file, bad topology file).
"""

from tracebraid.views.commands._options import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE

__all__ = ["EXIT_FINDINGS", "EXIT_OK", "EXIT_USAGE"]
