"""OTLP protobuf and OTLP/JSON decoding: round trips, the spec's JSON, per-span rejections."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest
from collector_spans import make_span
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tracebraid.collector import decode_json, decode_protobuf, encode_protobuf
from tracebraid.collector.validate import MAX_NESTING, describe_rejections
from tracebraid.errors import InputError
from tracebraid.model import SpanId, SpanKind, StatusCode, TraceId

# The example of the OTLP/JSON specification (opentelemetry-proto examples/trace.json).
SPEC_EXAMPLE = {
    "resourceSpans": [
        {
            "resource": {
                "attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]
            },
            "scopeSpans": [
                {
                    "scope": {"name": "my.library", "version": "1.0.0"},
                    "spans": [
                        {
                            "traceId": "5B8EFFF798038103D269B633813FC60C",
                            "spanId": "EEE19B7EC3C1B174",
                            "parentSpanId": "EEE19B7EC3C1B173",
                            "name": "I'm a server span",
                            "startTimeUnixNano": "1544712660000000000",
                            "endTimeUnixNano": "1544712661000000000",
                            "kind": 2,
                            "attributes": [
                                {"key": "my.span.attr", "value": {"stringValue": "some value"}},
                                {"key": "count", "value": {"intValue": "42"}},
                                {"key": "ratio", "value": {"doubleValue": 0.25}},
                                {"key": "ok", "value": {"boolValue": True}},
                            ],
                        }
                    ],
                }
            ],
        }
    ]
}


def test_protobuf_round_trip_keeps_every_field() -> None:
    spans = [make_span(i, parent=None if i == 0 else 0) for i in range(5)]
    decoded = decode_protobuf(encode_protobuf(spans))
    assert decoded.rejections == []
    assert decoded.spans == spans


def test_json_spec_example_decodes_with_hex_ids_and_string_int64() -> None:
    decoded = decode_json(json.dumps(SPEC_EXAMPLE))
    [span] = decoded.spans
    assert span.trace_id == "5b8efff798038103d269b633813fc60c"
    assert span.parent_span_id == "eee19b7ec3c1b173"
    assert span.kind is SpanKind.SERVER
    assert span.start_ns == 1544712660000000000
    assert span.service == "my.service"
    assert span.scope == "my.library"
    assert span.attributes == {"my.span.attr": "some value", "count": 42, "ratio": 0.25, "ok": True}


def test_json_accepts_snake_case_and_enum_names() -> None:
    span = SPEC_EXAMPLE["resourceSpans"][0]["scopeSpans"][0]["spans"][0]  # type: ignore[index]
    snake = {
        "resource_spans": [
            {
                "scope_spans": [
                    {
                        "spans": [
                            {
                                "trace_id": span["traceId"],
                                "span_id": span["spanId"],
                                "start_time_unix_nano": 5,
                                "end_time_unix_nano": 6,
                                "kind": "SPAN_KIND_PRODUCER",
                                "status": {"code": "STATUS_CODE_ERROR", "message": "boom"},
                            }
                        ]
                    }
                ]
            }
        ]
    }
    [decoded] = decode_json(json.dumps(snake)).spans
    assert decoded.kind is SpanKind.PRODUCER
    assert decoded.status is StatusCode.ERROR
    assert decoded.status_message == "boom"
    assert decoded.service == "unknown_service"


def _json_of(spans: list[dict[str, object]]) -> str:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]})


def _valid_json_span(n: int) -> dict[str, object]:
    return {
        "traceId": f"{1:032x}",
        "spanId": f"{n + 1:016x}",
        "name": "ok",
        "startTimeUnixNano": "10",
        "endTimeUnixNano": "20",
    }


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"traceId": "0" * 32}, "trace_id is all zeros"),
        ({"spanId": "0" * 16}, "span_id is all zeros"),
        ({"traceId": "abcd"}, "trace_id must be 16 bytes (32 hex digits); got 2 bytes"),
        ({"spanId": "zz" * 8}, "which is not hex"),
        ({"parentSpanId": "abc"}, "parent_span_id must be 8 bytes"),
        ({"endTimeUnixNano": "5"}, "end_time_unix_nano (5) is before start_time_unix_nano (10)"),
        ({"startTimeUnixNano": "0"}, "start_time_unix_nano is missing"),
        ({"startTimeUnixNano": -4}, "is not an unsigned 64-bit integer"),
        ({"startTimeUnixNano": "soon"}, "must be an integer or a decimal string"),
        ({"kind": 9}, "is not a span kind"),
        ({"kind": [1]}, "is not a span kind"),
        ({"name": 7}, "name must be a string"),
        ({"attributes": {"a": 1}}, "attributes must be an array"),
        ({"attributes": [{"key": "n", "value": {"intValue": "1e400"}}]}, "intValue"),
        ({"attributes": [{"key": "n", "value": {"intValue": str(2**64)}}]}, "fit in 64 bits"),
        ({"links": [{"traceId": "0" * 32, "spanId": "1" * 16}]}, "links[0].trace_id"),
        ({"events": "nope"}, "events must be an array"),
    ],
)
def test_json_refuses_one_bad_span_and_keeps_the_rest(
    change: dict[str, object], reason: str
) -> None:
    bad = {**_valid_json_span(1), **change}
    decoded = decode_json(_json_of([_valid_json_span(0), bad, _valid_json_span(2)]))
    assert [s.span_id for s in decoded.spans] == [f"{1:016x}", f"{3:016x}"]
    [rejection] = decoded.rejections
    assert reason in rejection.reason
    assert rejection.where.startswith("resourceSpans[0].scopeSpans[0].spans[1]")
    assert rejection.ordinal == 1


def test_base64_ids_in_json_are_refused_with_a_hint() -> None:
    span = {**_valid_json_span(0), "traceId": base64.b64encode(bytes(range(1, 17))).decode()}
    [rejection] = decode_json(_json_of([span])).rejections
    assert "hex, not base64" in rejection.reason


def test_protobuf_refuses_wrong_length_and_zero_ids_per_span() -> None:
    good = make_span(0)
    request = ExportTraceServiceRequest.FromString(encode_protobuf([good, make_span(1)]))
    bad = request.resource_spans[0].scope_spans[0].spans[1]
    bad.trace_id = b"\x01" * 5
    decoded = decode_protobuf(request.SerializeToString())
    assert decoded.spans == [good]
    [rejection] = decoded.rejections
    assert rejection.reason == "trace_id must be 16 bytes (32 hex digits); got 5 bytes"
    assert "resource_spans[0].scope_spans[0].spans[1]" in rejection.where
    bad.trace_id = bytes(16)
    assert "all zeros" in decode_protobuf(request.SerializeToString()).rejections[0].reason


def test_root_span_with_zero_parent_bytes_is_a_root() -> None:
    request = ExportTraceServiceRequest.FromString(encode_protobuf([make_span(0)]))
    request.resource_spans[0].scope_spans[0].spans[0].parent_span_id = bytes(8)
    [span] = decode_protobuf(request.SerializeToString()).spans
    assert span.parent_span_id is None


def test_nested_attribute_values_become_json_text_and_bytes_base64() -> None:
    attrs = [
        {
            "key": "mixed",
            "value": {"arrayValue": {"values": [{"intValue": 1}, {"stringValue": "a"}]}},
        },
        {
            "key": "map",
            "value": {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": False}}]}},
        },
        {"key": "blob", "value": {"bytesValue": "AAEC"}},
        {"key": "ints", "value": {"arrayValue": {"values": [{"intValue": "1"}, {"intValue": 2}]}}},
        {"key": "empty", "value": {}},
    ]
    [span] = decode_json(_json_of([{**_valid_json_span(0), "attributes": attrs}])).spans
    assert span.attributes == {
        "mixed": '[1,"a"]',
        "map": '{"k":false}',
        "blob": "AAEC",
        "ints": (1, 2),
    }
    # The protobuf path renders the same values the same way.
    assert decode_protobuf(encode_protobuf([span])).spans[0].attributes == span.attributes


def test_values_nested_too_deep_refuse_the_span_not_the_request() -> None:
    value: dict[str, object] = {"stringValue": "leaf"}
    for _ in range(MAX_NESTING + 5):
        value = {"arrayValue": {"values": [value]}}
    deep = {**_valid_json_span(1), "attributes": [{"key": "deep", "value": value}]}
    decoded = decode_json(_json_of([_valid_json_span(0), deep]))
    assert len(decoded.spans) == 1
    assert "nests deeper than" in decoded.rejections[0].reason


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff\xfe garbage", "not valid JSON"),
        (b"[1, 2]", 'must be an object with "resourceSpans"'),
        (b'{"resourceSpans": 3}', '"resourceSpans" must be an array'),
        (b"[" * 100_000, "objects and arrays"),  # refused by its density, before parsing
        (b"[" * 1000 + b"x" * 8000, "not valid JSON"),
    ],
)
def test_undecodable_json_raises_input_error(body: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        decode_json(body)


def test_undecodable_protobuf_raises_input_error() -> None:
    with pytest.raises(InputError, match="not an OTLP protobuf ExportTraceServiceRequest"):
        decode_protobuf(b"\x0a\xff\xff\xff\xff\x0f")


def test_malformed_resource_refuses_its_spans_only() -> None:
    doc = {
        "resourceSpans": [
            {"resource": {"attributes": "bad"}, "scopeSpans": [{"spans": [_valid_json_span(0)]}]},
            {"scopeSpans": [{"spans": [_valid_json_span(1)]}]},
        ]
    }
    decoded = decode_json(json.dumps(doc))
    assert [s.span_id for s in decoded.spans] == [f"{2:016x}"]
    assert decoded.rejected_count == 1
    assert "attributes must be an array" in decoded.rejections[0].reason


def test_rejection_summary_names_count_and_first_reasons() -> None:
    spans = [{**_valid_json_span(i), "traceId": "0" * 32} for i in range(8)]
    decoded = decode_json(_json_of(spans))
    message = describe_rejections(decoded.rejections, 10)
    assert message.startswith("8 of 10 spans rejected: resourceSpans[0]")
    assert message.endswith("and 3 more")


def test_encode_fills_service_name_into_an_empty_resource() -> None:
    span = replace(make_span(0), resource={}, trace_id=TraceId("ab" * 16), span_id=SpanId("cd" * 8))
    [back] = decode_protobuf(encode_protobuf([span])).spans
    assert back.resource == {"service.name": "inventory"}
    assert back.service == "inventory"
