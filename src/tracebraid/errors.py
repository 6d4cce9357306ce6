"""tracebraid's exceptions: one root, a short hierarchy, messages that say what to do.

::

    TracebraidError
    ├── ConfigurationError      a bad option, URL, conventions or topology file
    ├── MissingExtraError       an optional dependency is not installed
    ├── StoreError              the store cannot be opened, read or written
    ├── InputError              a span, file or payload is malformed
    └── BrokerUnavailableError  a broker is not reachable at the address tried

Propagation never raises into a consume loop: a malformed carrier yields a
``NoParent`` result with the reason instead (``tracebraid.sdk``).
"""

from __future__ import annotations

__all__ = [
    "BrokerUnavailableError",
    "ConfigurationError",
    "InputError",
    "MissingExtraError",
    "StoreError",
    "TracebraidError",
]


class TracebraidError(Exception):
    """Root of every exception tracebraid raises on purpose."""


class ConfigurationError(TracebraidError):
    """A bad option, URL, conventions file or topology file."""


class MissingExtraError(TracebraidError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, extra: str, module: str) -> None:
        super().__init__(
            f"{module!r} is not installed; install it with: pip install 'tracebraid[{extra}]'"
        )
        self.extra = extra
        self.module = module


class StoreError(TracebraidError):
    """The store cannot be opened, read or written."""


class InputError(TracebraidError):
    """A span, file or payload is malformed; the message names what and where."""


class BrokerUnavailableError(TracebraidError):
    """A broker is not reachable; the message names the address tried."""
