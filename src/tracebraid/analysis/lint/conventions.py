"""The conventions file: what a project requires of its spans, in the seed's YAML form.

::

    traceConventions:
      requiredFields: [traceId, eventId, correlationId, consumerName]
      spanNaming:
        style: business-step-first        # or: any (no naming rule)
        technicalNames: [run-job]         # more names that say nothing about the business
      syncMessaging:
        endpoints: ['^/v1/events$']       # HTTP paths that carry messages in this project
      rules:                              # severity per rule ID, or off
        TB304: off
        TB501: error
      services:                           # per-service overrides (exact name or glob)
        legacy-audit:
          requiredFields: [traceId, eventId]
          spanNaming: {style: any}
          rules: {TB101: warning}
      allow:                              # findings accepted on purpose
        - rule: TB501
          service: reporting
          span: "nightly *"
          reason: scheduler-named batch job

Field names map onto the identities of DESIGN.md: ``traceId``, ``spanId``,
``parentSpanId``, ``eventId``, ``correlationId``, ``causationId``, ``eventName``,
``consumerName``, ``attempt`` (see ``IdentityField``). A bad file is refused with its
line and what was expected; nothing is guessed.

Example::

    >>> conventions = parse_conventions("traceConventions:\\n  requiredFields: [eventId]\\n")
    >>> [f.value for f in conventions.for_service("inventory").required_fields]
    ['eventId']
    >>> parse_conventions("traceConventions:\\n  requiredFields: [eventID]\\n")
    Traceback (most recent call last):
    ...
    tracebraid.errors.ConfigurationError: <string>:2: unknown field 'eventID' in requiredFields; ...
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

import yaml

from tracebraid.analysis.lint._yaml_nodes import NodeReader
from tracebraid.analysis.lint.catalog import RULES_BY_ID
from tracebraid.analysis.lint.findings import Finding, Severity
from tracebraid.errors import ConfigurationError

__all__ = [
    "DEFAULT_CONVENTIONS",
    "SEED_REQUIRED_FIELDS",
    "Allow",
    "Conventions",
    "IdentityField",
    "NamingStyle",
    "ServiceConventions",
    "ServiceOverride",
    "load_conventions",
    "parse_conventions",
]


class IdentityField(enum.StrEnum):
    """A field name of the conventions file and the identity it stands for.

    Where each applies: ``eventId``, ``correlationId``, ``eventName`` on producer and
    consumer spans; ``consumerName`` (``messaging.consumer.group.name``), ``attempt``
    and ``parentSpanId`` on consumer spans; ``causationId`` on follow-up events
    (published while processing another); ``traceId`` and ``spanId`` every span has.
    """

    TRACE_ID = "traceId"
    SPAN_ID = "spanId"
    PARENT_SPAN_ID = "parentSpanId"
    EVENT_ID = "eventId"
    CORRELATION_ID = "correlationId"
    CAUSATION_ID = "causationId"
    EVENT_NAME = "eventName"
    CONSUMER_NAME = "consumerName"
    ATTEMPT = "attempt"


class NamingStyle(enum.StrEnum):
    """``spanNaming.style``: whether consumer spans must be named after business steps."""

    BUSINESS_STEP_FIRST = "business-step-first"
    ANY = "any"


SEED_REQUIRED_FIELDS = (
    IdentityField.TRACE_ID,
    IdentityField.EVENT_ID,
    IdentityField.CORRELATION_ID,
    IdentityField.CONSUMER_NAME,
)
"""The seed's ``requiredFields``: the default when a file does not say."""


@dataclass(frozen=True, slots=True)
class ServiceConventions:
    """The conventions in force for one service, overrides applied."""

    required_fields: tuple[IdentityField, ...]
    naming: NamingStyle
    technical_names: frozenset[str]
    rules: Mapping[str, Severity | None]
    """Rule ID -> severity, or ``None`` when the rule is off; rules not listed keep theirs."""

    def severity(self, rule: str, default: Severity) -> Severity | None:
        """The severity of ``rule`` here (``None``: the rule is off)."""
        return self.rules.get(rule, default)


@dataclass(frozen=True, slots=True)
class ServiceOverride:
    """What a ``services:`` entry changes; ``None`` and empty mean "as the project"."""

    required_fields: tuple[IdentityField, ...] | None = None
    naming: NamingStyle | None = None
    technical_names: tuple[str, ...] = ()
    rules: Mapping[str, Severity | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Allow:
    """An ``allow:`` entry: findings it matches are accepted and not reported.

    ``rule`` is a rule ID or ``*``; ``service``, ``step`` and ``span`` are globs
    (``span`` matches the name of any example span of the finding).
    """

    rule: str = "*"
    service: str = "*"
    step: str = "*"
    span: str = "*"
    reason: str = ""
    line: int | None = None

    def matches(self, finding: Finding) -> bool:
        """True when this entry accepts ``finding``."""
        if self.rule != "*" and self.rule != finding.rule:
            return False
        if not fnmatchcase(finding.service, self.service):
            return False
        if not fnmatchcase(finding.step, self.step):
            return False
        if self.span == "*":
            return True
        return any(fnmatchcase(s.name, self.span) for s in finding.spans)


@dataclass(frozen=True, slots=True)
class Conventions:
    """A project's conventions (``parse_conventions``/``load_conventions``); the defaults
    are the seed's file: ``requiredFields`` traceId, eventId, correlationId,
    consumerName and ``spanNaming.style: business-step-first``."""

    required_fields: tuple[IdentityField, ...] = SEED_REQUIRED_FIELDS
    naming: NamingStyle = NamingStyle.BUSINESS_STEP_FIRST
    technical_names: tuple[str, ...] = ()
    sync_endpoints: tuple[str, ...] = ()
    """Regular expressions over URL paths/routes that carry messages in this project."""
    rules: Mapping[str, Severity | None] = field(default_factory=dict)
    services: Mapping[str, ServiceOverride] = field(default_factory=dict)
    allow: tuple[Allow, ...] = ()
    source: str = "<defaults>"
    _project: ServiceConventions = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        project = ServiceConventions(
            required_fields=self.required_fields,
            naming=self.naming,
            technical_names=frozenset(n.lower() for n in self.technical_names),
            rules=dict(self.rules),
        )
        object.__setattr__(self, "_project", project)

    def override_for(self, service: str) -> ServiceOverride | None:
        """The ``services:`` entry for ``service``: its exact name first, then a glob."""
        found = self.services.get(service)
        if found is not None:
            return found
        return next(
            (o for pattern, o in self.services.items() if fnmatchcase(service, pattern)), None
        )

    def for_service(self, service: str) -> ServiceConventions:
        """The conventions in force for ``service``."""
        override = self.override_for(service) if self.services else None
        if override is None:
            return self._project
        project = self._project
        return ServiceConventions(
            required_fields=(
                override.required_fields
                if override.required_fields is not None
                else project.required_fields
            ),
            naming=override.naming or project.naming,
            technical_names=project.technical_names
            | frozenset(n.lower() for n in override.technical_names),
            rules={**project.rules, **override.rules},
        )

    def allowed_by(self, finding: Finding) -> Allow | None:
        """The ``allow:`` entry that accepts ``finding``, or ``None``."""
        return next((entry for entry in self.allow if entry.matches(finding)), None)


DEFAULT_CONVENTIONS = Conventions()
"""The seed's conventions file."""

_FIELDS = ", ".join(f.value for f in IdentityField)
_STYLES = ", ".join(s.value for s in NamingStyle)
_TOP = ("requiredFields", "spanNaming", "syncMessaging", "rules", "services", "allow")
_SERVICE_KEYS = ("requiredFields", "spanNaming", "rules")
_NAMING_KEYS = ("style", "technicalNames")
_ALLOW_KEYS = ("rule", "service", "step", "span", "reason")
_OFF = ("off", "false", "disabled", "none")


class _Reader(NodeReader):
    """The conventions file's parts, read with their lines."""

    def fields(self, node: yaml.Node, what: str) -> tuple[IdentityField, ...]:
        result: list[IdentityField] = []
        for text, item in self.scalars(node, what):
            try:
                result.append(IdentityField(text))
            except ValueError:
                raise self.error(
                    item, f"unknown field {text!r} in {what}; expected one of {_FIELDS}"
                ) from None
        return tuple(dict.fromkeys(result))

    def naming(self, node: yaml.Node, what: str) -> tuple[NamingStyle | None, tuple[str, ...]]:
        entries = self.mapping(node, what, _NAMING_KEYS)
        style: NamingStyle | None = None
        if "style" in entries:
            value_node = entries["style"][1]
            text = self.scalar(value_node, f"{what}.style")
            try:
                style = NamingStyle(text)
            except ValueError:
                raise self.error(
                    value_node, f"unknown {what}.style {text!r}; expected one of {_STYLES}"
                ) from None
        names: tuple[str, ...] = ()
        if "technicalNames" in entries:
            names = tuple(t for t, _ in self.scalars(entries["technicalNames"][1], what))
        return style, names

    def rules(self, node: yaml.Node, what: str) -> dict[str, Severity | None]:
        result: dict[str, Severity | None] = {}
        for rule, (key_node, value_node) in self.mapping(node, what, None).items():
            if rule not in RULES_BY_ID:
                raise self.error(
                    key_node,
                    f"unknown rule {rule!r} in {what}; expected a rule ID such as "
                    f"{', '.join(list(RULES_BY_ID)[:3])} (see tracebraid lint --rules)",
                )
            text = self.scalar(value_node, f"{what}.{rule}").strip().lower()
            if text in _OFF:
                result[rule] = None
                continue
            try:
                result[rule] = Severity(text)
            except ValueError:
                choices = ", ".join([*(s.value for s in Severity), "off"])
                raise self.error(
                    value_node, f"unknown severity {text!r} for {rule}; expected one of {choices}"
                ) from None
        return result

    def endpoints(self, node: yaml.Node, what: str) -> tuple[str, ...]:
        entries = self.mapping(node, what, ("endpoints",))
        if "endpoints" not in entries:
            return ()
        patterns: list[str] = []
        for text, item in self.scalars(entries["endpoints"][1], f"{what}.endpoints"):
            try:
                re.compile(text)
            except re.error as exc:
                raise self.error(
                    item, f"{text!r} in {what}.endpoints is not a regular expression: {exc}"
                ) from None
            patterns.append(text)
        return tuple(patterns)

    def override(self, node: yaml.Node, what: str) -> ServiceOverride:
        entries = self.mapping(node, what, _SERVICE_KEYS)
        required = None
        if "requiredFields" in entries:
            required = self.fields(entries["requiredFields"][1], f"{what}.requiredFields")
        style: NamingStyle | None = None
        names: tuple[str, ...] = ()
        if "spanNaming" in entries:
            style, names = self.naming(entries["spanNaming"][1], f"{what}.spanNaming")
        rules = self.rules(entries["rules"][1], f"{what}.rules") if "rules" in entries else {}
        return ServiceOverride(required, style, names, rules)

    def allow(self, node: yaml.Node, what: str) -> tuple[Allow, ...]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, f"{what} must be a list of entries (- rule: TB501 ...)")
        result: list[Allow] = []
        for item in node.value:
            entries = self.mapping(item, f"an entry of {what}", _ALLOW_KEYS)
            values = {k: self.scalar(v, f"{what}.{k}") for k, (_, v) in entries.items()}
            if "rule" not in values:
                raise self.error(item, f"an entry of {what} needs a rule (a rule ID or '*')")
            rule = values["rule"]
            if rule != "*" and rule not in RULES_BY_ID:
                raise self.error(
                    entries["rule"][1],
                    f"unknown rule {rule!r} in {what}; expected a rule ID or '*'",
                )
            result.append(
                Allow(
                    rule=rule,
                    service=values.get("service", "*"),
                    step=values.get("step", "*"),
                    span=values.get("span", "*"),
                    reason=values.get("reason", ""),
                    line=item.start_mark.line + 1,
                )
            )
        return tuple(result)


def parse_conventions(text: str, *, source: str = "<string>") -> Conventions:
    """Parse a conventions file's text; ``ConfigurationError`` names the line that is wrong."""
    reader = _Reader(source)
    root = reader.compose(text)
    if root is None:
        raise ConfigurationError(
            f"{source}: the file is empty; expected a 'traceConventions:' mapping"
        )
    top = reader.mapping(root, "the file", None)
    if "traceConventions" not in top:
        raise reader.error(root, "no 'traceConventions:' key; expected the seed's form")
    entries = reader.mapping(top["traceConventions"][1], "traceConventions", _TOP)
    required: tuple[IdentityField, ...] = SEED_REQUIRED_FIELDS
    if "requiredFields" in entries:
        required = reader.fields(entries["requiredFields"][1], "requiredFields")
    style = NamingStyle.BUSINESS_STEP_FIRST
    names: tuple[str, ...] = ()
    if "spanNaming" in entries:
        found_style, names = reader.naming(entries["spanNaming"][1], "spanNaming")
        style = found_style or style
    endpoints: tuple[str, ...] = ()
    if "syncMessaging" in entries:
        endpoints = reader.endpoints(entries["syncMessaging"][1], "syncMessaging")
    rules = reader.rules(entries["rules"][1], "rules") if "rules" in entries else {}
    services: dict[str, ServiceOverride] = {}
    if "services" in entries:
        for service, (_, node) in reader.mapping(entries["services"][1], "services", None).items():
            services[service] = reader.override(node, f"services.{service}")
    allow = reader.allow(entries["allow"][1], "allow") if "allow" in entries else ()
    return Conventions(
        required_fields=required,
        naming=style,
        technical_names=names,
        sync_endpoints=endpoints,
        rules=rules,
        services=services,
        allow=allow,
        source=source,
    )


def load_conventions(path: str | os.PathLike[str]) -> Conventions:
    """Read and parse a conventions file; ``ConfigurationError`` if unreadable or wrong."""
    name = os.fspath(path)
    try:
        text = Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the conventions file {name}: {exc.strerror or exc}"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"{name}: not UTF-8 text ({exc.reason})") from None
    return parse_conventions(text, source=name)
