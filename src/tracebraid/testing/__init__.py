"""Testing helpers for users' own suites: capture spans, assert causality."""
