"""Records built on the hot path are the same records the dataclass constructors build."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tracebraid.model import CorrelationId, EventId
from tracebraid.sdk import MessageContext, NoParent, Processing
from tracebraid.sdk.context import _message_context, _processing_record
from tracebraid.sdk.propagation import Extracted, _extracted

_text = st.none() | st.text(max_size=8)


@given(
    st.tuples(
        _text, _text, _text, _text, _text, _text,
        st.none() | st.integers(1, 9),
        st.integers(0, 255),
        st.text(max_size=8),
        st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
    )
)  # fmt: skip
def test_a_fast_message_context_is_a_message_context(fields: tuple[object, ...]) -> None:
    fast = _message_context(*fields)  # type: ignore[arg-type]
    slow = MessageContext(*fields)  # type: ignore[arg-type]
    assert type(fast) is MessageContext
    assert fast == slow and repr(fast) == repr(slow)
    assert dataclasses.astuple(fast) == dataclasses.astuple(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.event_id = None  # type: ignore[misc]


@given(
    st.tuples(
        _text, _text, _text, st.text(max_size=8), st.text(max_size=8), st.integers(1, 9),
        st.text(max_size=8), st.text(max_size=8), _text,
    )
)  # fmt: skip
def test_a_fast_processing_record_is_a_processing_record(fields: tuple[object, ...]) -> None:
    fast = _processing_record(*fields)  # type: ignore[arg-type]
    slow = Processing(*fields)  # type: ignore[arg-type]
    assert type(fast) is Processing
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.step = "other"  # type: ignore[misc]


def test_a_fast_extracted_is_an_extracted() -> None:
    message = MessageContext(
        None, None, CorrelationId("order_441"), EventId("evt_1"), None, "order.placed"
    )
    fast = _extracted(message, NoParent("none here"), ("a problem",), None)
    slow = Extracted(message, NoParent("none here"), ("a problem",), None)
    assert type(fast) is Extracted
    assert fast == slow and repr(fast) == repr(slow)
    assert not fast.has_parent
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.no_parent = None  # type: ignore[misc]
