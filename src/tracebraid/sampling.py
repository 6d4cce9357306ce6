"""The workflow sampling rule: one hash of the correlation ID against a ratio.

Every part that keeps or drops a workflow asks this one function, so their decisions
agree: the SDK's ``WorkflowSampler`` (head sampling, in every service and every trace
of a workflow), the collector's retention (healthy workflows kept at a ratio) and the
analysis (which workflows a fleet figure stands for). Decisions nest: a workflow kept
at 1 % is also kept at 10 %, so a collector retaining 10 % of what services sampled at
10 % keeps exactly what they sent.

The hash is the first 8 bytes of BLAKE2b over the UTF-8 correlation ID, read as a
big-endian unsigned integer; a workflow is kept when it is below ``ratio * 2**64``.
Any language can compute the same decision (docs/sampling.md).

Example::

    >>> keeps("order_441", 1.0), keeps("order_441", 0.0)
    (True, False)
    >>> keeps("order_441", 0.5) == keeps("order_441", 0.5)
    True
"""

from __future__ import annotations

import hashlib

from tracebraid.errors import ConfigurationError

__all__ = ["check_ratio", "keeps", "workflow_hash"]

_SCALE = 2**64
_blake2b = hashlib.blake2b


def workflow_hash(correlation_id: str) -> int:
    """The workflow's position in [0, 2**64): the same in every process and language."""
    digest = _blake2b(correlation_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest)


def keeps(correlation_id: str, ratio: float) -> bool:
    """True when the workflow ``correlation_id`` is among the ``ratio`` kept."""
    if ratio >= 1.0:
        return True
    return workflow_hash(correlation_id) < int(ratio * _SCALE)


def check_ratio(ratio: float | str, what: str = "the sampling ratio") -> float:
    """``ratio`` as a float in [0, 1], or a ``ConfigurationError`` saying what was wrong."""
    try:
        value = float(ratio)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{what} must be a number in [0, 1], not {ratio!r}") from None
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise ConfigurationError(
            f"{what} must be in [0, 1] (0.1 keeps one workflow in ten), not {ratio!r}"
        )
    return value
