"""Regenerates this folder: stock aiokafka instrumentation, retry topics.

Run with the corpus venv and tansu on 127.0.0.1:19092 (see ../kafka_corpus.py)::

    /work/venvs/corpus-kafka/bin/python tests/corpus/aiokafka-retry-topic/make.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kafka_corpus import Scenario, main

SCENARIO = Scenario(
    name="aiokafka-retry-topic",
    client="aiokafka",
    retry="retry-topic",
    batch=False,
    description=(
        "One order through seven aiokafka services (getone), each its own process: a failed "
        "record is republished to a per-group retry topic with the same key and a "
        "retry-attempt header, read by the same group after a 400 ms back-off, and "
        "dead-lettered after the third failure. Covers fan-out, retries, a final failure, an "
        "uncommitted redelivery, a duplicate publish, a propagation break, a lagging "
        "consumer and a topic nobody consumes."
    ),
    handled_inside_consumer_span=False,
    folder=Path(__file__).resolve().parent,
)

if __name__ == "__main__":
    main(SCENARIO, __file__)
