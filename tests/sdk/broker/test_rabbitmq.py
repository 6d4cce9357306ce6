"""RabbitMQ (aio-pika) against the real server on loopback: the contract, attempts, crashes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from broker_contract import BrokerContract
from traced_contract import TracedBrokerContract

from tracebraid.sdk.broker import Broker
from tracebraid.sdk.broker.rabbitmq import DEFAULT_RABBITMQ_URL, RabbitMQBroker

pytestmark = pytest.mark.broker


class TestRabbitMQBroker(BrokerContract, TracedBrokerContract):
    @pytest.fixture
    async def broker(self) -> AsyncIterator[Broker]:
        async with RabbitMQBroker(DEFAULT_RABBITMQ_URL, temporary=True) as broker:
            yield broker
