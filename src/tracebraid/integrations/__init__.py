"""Integrations with messaging frameworks, beside their stock OpenTelemetry instrumentation.

Each module uses the framework's own hooks and imports the framework only itself:

- ``tracebraid.integrations.celery``: Celery signals (``instrument()``), beside
  ``opentelemetry-instrumentation-celery``;
- ``tracebraid.integrations.faststream``: a FastStream middleware
  (``TracebraidMiddleware``), beside FastStream's ``TelemetryMiddleware``.

Both ride on ``tracebraid.instrument()`` (the propagator and the span processor); see
``docs/integrations.md``.
"""

from __future__ import annotations

__all__: list[str] = []
