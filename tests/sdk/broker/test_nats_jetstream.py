"""NATS JetStream against the real server on loopback: the contract, attempts, crashes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from broker_contract import BrokerContract
from traced_contract import TracedBrokerContract

from tracebraid.sdk.broker import Broker
from tracebraid.sdk.broker.nats_jetstream import DEFAULT_NATS_URL, NatsJetStreamBroker

pytestmark = pytest.mark.broker


class TestNatsJetStreamBroker(BrokerContract, TracedBrokerContract):
    @pytest.fixture
    async def broker(self) -> AsyncIterator[Broker]:
        async with NatsJetStreamBroker(DEFAULT_NATS_URL, ack_wait=2.0, temporary=True) as broker:
            yield broker
