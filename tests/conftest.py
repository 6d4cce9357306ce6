"""Session fixtures shared by every test package."""

from __future__ import annotations

from kafka_server import kafka_bootstrap

__all__ = ["kafka_bootstrap"]
