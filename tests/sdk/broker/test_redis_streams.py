"""Redis Streams against the real server on loopback: the contract, attempts, crashes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from broker_contract import BrokerContract
from traced_contract import TracedBrokerContract

from tracebraid.sdk.broker import Broker
from tracebraid.sdk.broker.redis_streams import DEFAULT_REDIS_URL, RedisStreamsBroker

pytestmark = pytest.mark.broker


class TestRedisStreamsBroker(BrokerContract, TracedBrokerContract):
    @pytest.fixture
    async def broker(self) -> AsyncIterator[Broker]:
        async with RedisStreamsBroker(DEFAULT_REDIS_URL, claim_after=1.0, temporary=True) as broker:
            yield broker
