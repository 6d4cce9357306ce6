"""A bad optional field is a listed problem, never a reason to drop a valid
``traceparent`` or the other identities: the consumer must not start a new trace."""

from __future__ import annotations

from typing import Any

import pytest

from tracebraid.sdk._header_values import MAX_ATTEMPT, parse_attempt
from tracebraid.sdk.envelope import extract_envelope
from tracebraid.sdk.propagation import extract

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE}-{SPAN}-01"
GOOD = {"traceparent": TRACEPARENT, "x-event-id": "evt_1", "x-event-name": "order.placed"}

BAD_FIELDS: list[dict[str, Any]] = [
    {"x-attempt": "\u00b2"},  # str.isdigit accepts it, int() refuses it
    {"x-attempt": "\u0663"},  # an Arabic-Indic three: int() takes it, OTLP readers would not
    {"x-attempt": "9" * 4300},  # past int()'s digit limit
    {"x-attempt": str(2**63)},  # one past what OTLP's int64 carries
    {"baggage": "k=\ud800"},
    {"baggage": "correlation_id=\udfff,other=1"},
    {"x-correlation-id": "order_\ud800"},
    {"x-causation-id": "\udc00"},
]


@pytest.mark.parametrize("bad", BAD_FIELDS, ids=repr)
@pytest.mark.parametrize("as_bytes", [False, True])
def test_a_bad_optional_header_keeps_the_parent_and_identities(
    bad: dict[str, Any], as_bytes: bool
) -> None:
    headers: dict[str, Any] = {**GOOD, **bad}
    if as_bytes:
        headers = {
            k: v.encode("utf-8", "surrogatepass") if k in bad else v for k, v in headers.items()
        }
    extracted = extract(headers)
    assert extracted.has_parent, extracted.no_parent
    assert (extracted.context.trace_id, extracted.context.span_id) == (TRACE, SPAN)
    assert extracted.context.event_id == "evt_1"
    assert extracted.context.event_name == "order.placed"
    assert extracted.problems, "the bad field must be listed"
    assert extracted.context.attempt is None


@pytest.mark.parametrize(
    "attempt",
    [2**63, 2**70, 10**5000, -1, 0, "\u00b2", "9" * 4300],
    ids=["2^63", "2^70", "10^5000", "-1", "0", "superscript", "4300-digits"],
)
def test_a_bad_envelope_attempt_keeps_the_parent(attempt: object) -> None:
    envelope = {"traceparent": TRACEPARENT, "eventId": "evt_2", "attempt": attempt}
    extracted = extract_envelope(envelope)
    assert extracted.has_parent, extracted.no_parent
    assert extracted.context.event_id == "evt_2"
    assert extracted.context.attempt is None
    assert extracted.problems


def test_a_bad_envelope_baggage_keeps_the_parent() -> None:
    envelope = {"traceparent": TRACEPARENT, "eventId": "evt_3", "baggage": "a=\ud800"}
    extracted = extract_envelope(envelope)
    assert extracted.has_parent
    assert extracted.context.event_id == "evt_3"
    assert extracted.problems


def test_attempts_are_bounded_by_what_otlp_carries() -> None:
    problems: list[str] = []
    assert parse_attempt(str(MAX_ATTEMPT), problems) == MAX_ATTEMPT
    assert parse_attempt(" 3 ", problems) == 3
    assert problems == []
    assert parse_attempt(str(MAX_ATTEMPT + 1), problems) is None
    assert problems == [
        f"attempt {MAX_ATTEMPT + 1} is over {MAX_ATTEMPT}, the most OTLP carries; ignored"
    ]


def test_good_non_ascii_identities_are_kept() -> None:
    extracted = extract({**GOOD, "x-correlation-id": "caf\u00e9_1"})
    assert extracted.context.correlation_id == "caf\u00e9_1"
    assert extracted.problems == ()
