"""Regenerates this folder: stock aiokafka instrumentation, retries by seeking back.

Run with the corpus venv and tansu on 127.0.0.1:19092 (see ../kafka_corpus.py)::

    /work/venvs/corpus-kafka/bin/python tests/corpus/aiokafka-seek-back/make.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kafka_corpus import Scenario, main

SCENARIO = Scenario(
    name="aiokafka-seek-back",
    client="aiokafka",
    retry="seek-back",
    description=(
        "One order through seven aiokafka services (getone), each its own process: a failed "
        "record is retried by seeking back to its offset, so the same offset is delivered "
        "again after a 400 ms back-off. Covers fan-out, retries, a dead-lettered final "
        "failure, an uncommitted redelivery, a duplicate publish, a propagation break, a "
        "lagging consumer and a topic nobody consumes."
    ),
    handled_inside_consumer_span=False,
    folder=Path(__file__).resolve().parent,
)

if __name__ == "__main__":
    main(SCENARIO, __file__)
