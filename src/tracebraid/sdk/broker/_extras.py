"""Broker clients are optional extras: import one on first use, or say which extra installs it.

The adapters import their client inside ``start()`` (so ``import tracebraid`` stays
light) through ``client_import``, which turns the ``ImportError`` into a
``MissingExtraError`` naming the extra::

    with client_import("rabbitmq", "aio_pika"):
        import aio_pika
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tracebraid.errors import MissingExtraError

__all__ = ["client_import"]


@contextmanager
def client_import(extra: str, module: str) -> Iterator[None]:
    """Raise ``MissingExtraError(extra, module)`` if the imports inside fail."""
    try:
        yield
    except MissingExtraError:
        raise
    except ImportError as exc:
        raise MissingExtraError(extra, module) from exc
