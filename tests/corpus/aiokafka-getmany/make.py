"""Regenerates this folder: stock aiokafka instrumentation, getmany() batches.

Run with the corpus venv and tansu on 127.0.0.1:19092 (see ../kafka_corpus.py)::

    /work/venvs/corpus-kafka/bin/python tests/corpus/aiokafka-getmany/make.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kafka_corpus import Scenario, main

SCENARIO = Scenario(
    name="aiokafka-getmany",
    client="aiokafka",
    retry="seek-back",
    batch=True,
    description=(
        "One order through seven aiokafka services reading in batches with getmany(), each "
        "its own process: a failed record is retried by seeking back to its offset. Covers "
        "fan-out, retries, a dead-lettered final failure, an uncommitted redelivery, a "
        "duplicate publish, a propagation break, a lagging consumer and a topic nobody "
        "consumes."
    ),
    handled_inside_consumer_span=False,
    folder=Path(__file__).resolve().parent,
)

if __name__ == "__main__":
    main(SCENARIO, __file__)
