"""Regenerate the Celery corpus with ``use_span_links=True``: the same order workflow.

The scenario (``../celery-redis/shop.py``) and its runner (``../celery-redis/make.py``)
are shared with ``celery-redis``; only the instrumentation's option differs, so every
worker's run span starts a new trace that links to the publishing apply_async span::

    /tmp/celery-corpus/bin/python tests/corpus/celery-redis-span-links/make.py
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "--span-links", "--out", str(HERE), *sys.argv[1:]]
    runpy.run_path(str(HERE.parent / "celery-redis" / "make.py"), run_name="__main__")
