"""Building frozen records on the hot path at the cost of an ordinary object.

A frozen dataclass's generated ``__init__`` sets each field through
``object.__setattr__``, a call per field, because the class forbids plain assignment:
a ten-field ``MessageContext`` costs about 0.8 us that way, five times a plain object,
and every hop builds several records. ``layout_twin(Record)`` returns a plain class with
exactly ``Record``'s slots; a fast constructor fills a twin by plain assignment and then
assigns ``__class__ = Record``, which Python allows between classes of identical layout.
The result *is* a ``Record``, frozen like any other; the constructors are tested equal to
the dataclass constructors field for field.

Example::

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True, slots=True)
    ... class Point:
    ...     x: int
    ...     y: int
    >>> fields = layout_twin(Point)()
    >>> fields.x, fields.y = 1, 2
    >>> fields.__class__ = Point
    >>> fields == Point(1, 2)
    True
"""

from __future__ import annotations

from typing import Any

__all__ = ["layout_twin"]


def layout_twin(record: type) -> Any:
    """A plain class with the same ``__slots__`` as the slots dataclass ``record``."""
    slots = record.__dict__["__slots__"]
    return type(f"_{record.__name__}Fields", (), {"__slots__": slots})
