"""Header values one at a time: text from str or bytes, the attempt count, the W3C
baggage (correlation ID and other entries), and why a ``traceparent`` is unusable.

Reading never raises: what cannot be used is reported in ``problems`` (or as the reason
for a missing parent) and ignored, one field at a time, so a bad optional field (an
attempt of ``²`` or of 4,300 digits, baggage holding a lone surrogate) never costs the
``traceparent`` or the other identities beside it. Writing the common baggage (the
correlation ID alone) skips ``W3CBaggagePropagator``'s machinery and produces the same
header.

Example::

    >>> problems: list[str] = []
    >>> read_baggage("correlation_id=order_441", problems)
    ({}, 'order_441')
    >>> correlation_baggage("order 441")
    'correlation_id=order+441'
    >>> parse_attempt("0", problems), problems
    (None, ["attempt '0' is not a whole number >= 1; ignored"])
    >>> parse_attempt("\u00b2", []), parse_attempt(str(2**63), [])
    (None, None)
"""

from __future__ import annotations

import re
from urllib.parse import quote_plus, unquote_plus

from opentelemetry import baggage as otel_baggage
from opentelemetry.baggage.propagation import W3CBaggagePropagator

from tracebraid.sdk.context import BAGGAGE_CORRELATION_KEY

__all__ = [
    "BAGGAGE",
    "CORRELATION_PREFIX",
    "MAX_ATTEMPT",
    "correlation_baggage",
    "header_text",
    "is_unquoted",
    "parse_attempt",
    "read_baggage",
    "readable_text",
    "traceparent_reason",
]

BAGGAGE = W3CBaggagePropagator()
"""OpenTelemetry's W3C baggage propagator, for everything but the common shape."""
CORRELATION_PREFIX = BAGGAGE_CORRELATION_KEY + "="
MAX_ATTEMPT = 2**63 - 1
"""The largest attempt read: OTLP carries an integer attribute in 64 signed bits."""
_MAX_ATTEMPT_DIGITS = len(str(MAX_ATTEMPT))

_MAX_BAGGAGE_BYTES = 8192  # W3C Baggage limits, as OpenTelemetry enforces them
_MAX_BAGGAGE_MEMBER = 4096
_MAX_TRACEPARENT = 512
_TRACEPARENT_SHAPE = re.compile(r"^[ \t]*([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
# Characters quote_plus leaves alone, and a W3C baggage value's characters.
_UNQUOTED = re.compile(r"[A-Za-z0-9_.~-]+")


def is_unquoted(value: str) -> bool:
    """True when ``quote_plus`` leaves ``value`` alone (so a baggage value needs no
    decoding either). An ASCII identifier (``corr_...``) is, and two string methods
    answer that a few times faster than the regex, which decides the rest."""
    return (value.isascii() and value.isidentifier()) or _UNQUOTED.fullmatch(value) is not None


_BAGGAGE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+")


def correlation_baggage(correlation: str) -> str | None:
    """The common baggage header, only the correlation ID, written as
    ``W3CBaggagePropagator`` would write it, without its machinery."""
    encoded = correlation if is_unquoted(correlation) else quote_plus(correlation)
    if len(encoded) + len(CORRELATION_PREFIX) > _MAX_BAGGAGE_MEMBER:
        return None
    return CORRELATION_PREFIX + encoded


def traceparent_reason(value: str) -> str:
    """Why OpenTelemetry's propagator found no parent in ``value``, in words."""
    shown = value if len(value) <= 80 else value[:77] + "..."
    if len(value) > _MAX_TRACEPARENT:
        return f"traceparent is {len(value)} characters long, over the {_MAX_TRACEPARENT} limit"
    match = _TRACEPARENT_SHAPE.match(value)
    if match is None:
        return (
            f"traceparent {shown!r} is malformed: expected 'version-traceid-parentid-flags' "
            "as 2, 32, 16 and 2 lowercase hex digits"
        )
    version, trace_id, span_id, _ = match.groups()
    if version == "ff":
        return f"traceparent {shown!r} has the forbidden version 'ff'"
    if trace_id == "0" * 32:
        return f"traceparent {shown!r} has an all-zero trace ID"
    if span_id == "0" * 16:
        return f"traceparent {shown!r} has an all-zero parent span ID"
    return f"traceparent {shown!r} has unexpected trailing data for version {version}"


def header_text(name: str, raw: object, problems: list[str]) -> str | None:
    """The text of header ``name`` (``None`` if absent, empty or unreadable, and why)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw or None
    if isinstance(raw, bytes | bytearray | memoryview):
        try:
            return bytes(raw).decode("utf-8") or None
        except UnicodeDecodeError as exc:
            problems.append(f"header {name!r} is not UTF-8 text ({exc.reason}); ignored")
            return None
    problems.append(f"header {name!r} is a {type(raw).__name__}, expected str or bytes; ignored")
    return None


def readable_text(name: str, text: str | None, problems: list[str]) -> str | None:
    """``text``, or None (and why) when it holds a lone surrogate, which no exporter
    can write as UTF-8: the span carrying it would be dropped whole."""
    if text is None or text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        problems.append(f"{name} {_shown(text)} is not valid Unicode text; ignored")
        return None
    return text


def _shown(text: str) -> str:
    return ascii(text) if len(text) <= 60 else ascii(text[:57]) + "..."


def parse_attempt(text: str | None, problems: list[str]) -> int | None:
    """The delivery attempt in ``text``, a whole number from 1 to ``MAX_ATTEMPT`` (else
    ``None``, and why). Only ASCII digits count (``str.isdigit`` also takes ``²``)."""
    if text is None:
        return None
    stripped = text.strip()
    if stripped.isascii() and stripped.isdigit():
        if len(stripped.lstrip("0")) <= _MAX_ATTEMPT_DIGITS:
            value = int(stripped)
            if 1 <= value <= MAX_ATTEMPT:
                return value
            if value > MAX_ATTEMPT:
                problems.append(
                    f"attempt {value} is over {MAX_ATTEMPT}, the most OTLP carries; ignored"
                )
                return None
        else:
            problems.append(f"attempt of {len(stripped)} digits is over {MAX_ATTEMPT}; ignored")
            return None
    problems.append(f"attempt {_shown(text)} is not a whole number >= 1; ignored")
    return None


def read_baggage(header: str, problems: list[str]) -> tuple[dict[str, str], str | None]:
    """(entries other than correlation, correlation) from a baggage header."""
    if readable_text("baggage", header, problems) is None:
        return {}, None
    try:
        return _read_baggage(header, problems)
    except Exception as exc:  # the baggage is optional: it must not cost the parent
        problems.append(f"baggage could not be read ({type(exc).__name__}: {exc}); ignored")
        return {}, None


def _read_baggage(header: str, problems: list[str]) -> tuple[dict[str, str], str | None]:
    # Four UTF-8 bytes at most per character: only a long header needs encoding to know.
    if len(header) > _MAX_BAGGAGE_BYTES // 4:
        size = len(header.encode("utf-8", "replace"))
        if size > _MAX_BAGGAGE_BYTES:
            problems.append(
                f"baggage is {size} bytes, over the W3C limit of {_MAX_BAGGAGE_BYTES}; ignored"
            )
            return {}, None
    if header.startswith(CORRELATION_PREFIX) and "," not in header:
        # The shape tracebraid itself writes: one member, the correlation ID.
        value = header[len(CORRELATION_PREFIX) :].strip(" \t")
        if value and _BAGGAGE_VALUE.fullmatch(value):
            return {}, unquote_plus(value).strip() if "%" in value or "+" in value else value
    entries = {
        k: str(v) for k, v in otel_baggage.get_all(BAGGAGE.extract({"baggage": header})).items()
    }
    members = sum(1 for m in header.split(",") if m.strip())
    if members > len(entries):
        problems.append(
            f"baggage: {members - len(entries)} of {members} list-members were "
            "malformed or duplicated; ignored"
        )
    return entries, entries.pop(BAGGAGE_CORRELATION_KEY, None)
