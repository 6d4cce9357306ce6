"""The conventions file: the seed's form parses, overrides and allowlists apply, and a bad
file is refused with its line and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracebraid.analysis.lint import (
    DEFAULT_CONVENTIONS,
    RULES_BY_ID,
    SEED_REQUIRED_FIELDS,
    Finding,
    IdentityField,
    NamingStyle,
    Severity,
    load_conventions,
    parse_conventions,
)
from tracebraid.analysis.records import SpanRef
from tracebraid.errors import ConfigurationError
from tracebraid.model import SpanId, TraceId

SEED = """\
traceConventions:
  requiredFields:
    - traceId
    - eventId
    - correlationId
    - consumerName
  spanNaming:
    style: business-step-first
"""

FULL = """\
traceConventions:
  requiredFields: [traceId, eventId, attempt]
  spanNaming:
    style: business-step-first
    technicalNames: [run-job]
  syncMessaging:
    endpoints: ['^/v1/events$']
  rules:
    TB304: off
    TB501: error
  services:
    legacy-audit:
      requiredFields: [traceId]
      spanNaming: {style: any}
      rules: {TB101: warning}
    batch-*:
      rules: {TB601: info}
  allow:
    - rule: TB701
      service: checkout-api
      span: "POST*"
      reason: the audit copy is being replaced
"""


def test_the_seeds_file_is_the_default() -> None:
    parsed = parse_conventions(SEED)
    assert parsed.required_fields == SEED_REQUIRED_FIELDS == DEFAULT_CONVENTIONS.required_fields
    assert parsed.naming is NamingStyle.BUSINESS_STEP_FIRST
    assert parsed.for_service("x") == DEFAULT_CONVENTIONS.for_service("x")


def test_overrides_apply_per_service_exact_name_then_glob() -> None:
    parsed = parse_conventions(FULL)
    project = parsed.for_service("inventory")
    assert project.required_fields == (
        IdentityField.TRACE_ID,
        IdentityField.EVENT_ID,
        IdentityField.ATTEMPT,
    )
    assert project.technical_names == frozenset({"run-job"})
    assert project.severity("TB304", Severity.WARNING) is None
    assert project.severity("TB501", Severity.WARNING) is Severity.ERROR
    assert project.severity("TB101", Severity.ERROR) is Severity.ERROR
    legacy = parsed.for_service("legacy-audit")
    assert legacy.required_fields == (IdentityField.TRACE_ID,)
    assert legacy.naming is NamingStyle.ANY
    assert legacy.severity("TB101", Severity.ERROR) is Severity.WARNING
    assert legacy.severity("TB304", Severity.WARNING) is None  # project rules still hold
    assert parsed.for_service("batch-billing").severity("TB601", Severity.WARNING) is Severity.INFO
    assert parsed.sync_endpoints == ("^/v1/events$",)


def _finding(rule: str, service: str, span: str) -> Finding:
    ref = SpanRef(TraceId("1" * 32), SpanId("2" * 16), span, service)
    return Finding.of(
        RULES_BY_ID[rule], service=service, step="place-order", message="m", spans=[ref]
    )


def test_allow_entries_match_rule_service_step_and_span_globs() -> None:
    parsed = parse_conventions(FULL)
    (entry,) = parsed.allow
    assert (entry.rule, entry.reason, entry.line) == (
        "TB701",
        "the audit copy is being replaced",
        FULL.splitlines().index("    - rule: TB701") + 1,
    )
    assert parsed.allowed_by(_finding("TB701", "checkout-api", "POST")) is entry
    assert parsed.allowed_by(_finding("TB701", "payment", "POST")) is None
    assert parsed.allowed_by(_finding("TB701", "checkout-api", "publish")) is None
    assert parsed.allowed_by(_finding("TB501", "checkout-api", "POST")) is None


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("traceConventions:\n  requiredFields: [eventID]\n", 2, "unknown field 'eventID'"),
        ("traceConventions:\n  spanNaming:\n    style: verb-first\n", 3, "expected one of"),
        ("traceConventions:\n  spanNamig: {}\n", 2, "unknown key 'spanNamig'"),
        ("traceConventions:\n  rules:\n    TB999: error\n", 3, "unknown rule 'TB999'"),
        ("traceConventions:\n  rules:\n    TB101: fatal\n", 3, "unknown severity 'fatal'"),
        ("traceConventions:\n  requiredFields: {a: b}\n", 2, "must be a list"),
        ("traceConventions: [1, 2]\n", 1, "must be a mapping"),
        ("traceConventions:\n  allow:\n    - service: x\n", 3, "needs a rule"),
        ("traceConventions:\n  allow:\n    - rule: TB1\n", 3, "unknown rule 'TB1'"),
        ("traceConventions:\n  syncMessaging:\n    endpoints: ['(']\n", 3, "not a regular"),
        ("traceConventions:\n  rules: {}\n  rules: {}\n", 3, "appears twice"),
        ("traceConventions:\n  requiredFields: [eventId\n", 3, "not valid YAML"),
        ("other: 1\n", 1, "no 'traceConventions:' key"),
        (
            "traceConventions:\n  services:\n    a:\n      spanNaming: {style: loud}\n",
            4,
            "unknown services.a.spanNaming.style",
        ),
    ],
)
def test_a_bad_file_names_its_line_and_what_was_expected(
    text: str, line: int, expected: str
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        parse_conventions(text, source="conv.yaml")
    message = str(raised.value)
    assert message.startswith(f"conv.yaml:{line}: "), message
    assert expected in message


def test_an_empty_file_says_what_it_should_hold() -> None:
    with pytest.raises(ConfigurationError, match="empty; expected a 'traceConventions:'"):
        parse_conventions("# nothing\n", source="conv.yaml")


def test_load_reads_a_file_and_names_it_in_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(SEED)
    assert load_conventions(good).source == str(good)
    bad = tmp_path / "bad.yaml"
    bad.write_text("traceConventions:\n  requiredFields: [nope]\n")
    with pytest.raises(ConfigurationError, match=rf"^{bad}:2: unknown field 'nope'"):
        load_conventions(bad)
    with pytest.raises(ConfigurationError, match="cannot read the conventions file"):
        load_conventions(tmp_path / "missing.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigurationError, match="not UTF-8"):
        load_conventions(binary)


def test_a_single_field_may_be_written_without_brackets() -> None:
    parsed = parse_conventions("traceConventions:\n  requiredFields: eventId\n")
    assert parsed.required_fields == (IdentityField.EVENT_ID,)
