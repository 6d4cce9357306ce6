"""Broker addresses in messages: the URL tried, never its password.

Example::

    >>> redact("amqp://guest:guest@127.0.0.1:5672/")
    'amqp://guest:***@127.0.0.1:5672/'
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from tracebraid.errors import BrokerUnavailableError

__all__ = ["redact", "unavailable"]


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def unavailable(system: str, url: str, error: BaseException) -> BrokerUnavailableError:
    """The error for a broker that did not answer at ``url``: the address, the cause, what to do."""
    reason = str(error) or type(error).__name__
    return BrokerUnavailableError(
        f"{system} is not reachable at {redact(url)} ({type(error).__name__}: {reason}); "
        f"start the server or pass the right URL"
    )
