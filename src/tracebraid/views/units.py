"""How durations and identities read in a terminal: ``812 ms``, ``1.92 s``, ``evt_5bc9…``.

Business names come first and identities on demand, so by default a long ID is
shortened to a prefix that is still enough to tell siblings apart; ``--ids`` shows
it whole.

Example::

    >>> format_duration(812_400_000), format_duration(1_920_000_000), format_duration(350_000)
    ('812 ms', '1.92 s', '0.35 ms')
    >>> short_id("evt_5bc9444af5081f42582c8900a7b71ed5")
    'evt_5bc9444a…'
"""

from __future__ import annotations

__all__ = ["format_duration", "short_id"]

_SHORT = 8


def format_duration(ns: int | None) -> str:
    """A duration in the unit an operator reads fastest; ``?`` when unknown."""
    if ns is None:
        return "?"
    ms = ns / 1_000_000
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 10:
        return f"{ms:.1f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def short_id(identity: str, *, full: bool = False) -> str:
    """``identity`` cut to a readable prefix (kept whole when ``full`` or already short).

    A ``prefix_`` such as ``evt_`` or ``corr_`` is kept and not counted.
    """
    if full:
        return identity
    prefix, sep, rest = identity.partition("_")
    if not sep or len(prefix) > 6:
        prefix, rest = "", identity
    else:
        prefix += "_"
    if len(rest) <= _SHORT + 2:
        return identity
    return f"{prefix}{rest[:_SHORT]}…"
