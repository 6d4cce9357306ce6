"""Regenerates this folder's spans.jsonl, truth.json and journal.jsonl.

The order workflow on pika with requeue retries, against RabbitMQ on 127.0.0.1:5672
(guest/guest). Run it with the pinned stack of requirements.txt::

    python -m venv /tmp/venv && /tmp/venv/bin/pip install -r requirements.txt
    /tmp/venv/bin/python make.py

The flow, the services and how the truth is derived are in ../rabbit_flow.py.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rabbit_flow import main

if __name__ == "__main__":
    main(Path(__file__).resolve().parent, client="pika", pattern="requeue")
