"""harborapi 0.26.2 (Harbor's Python client, its pydantic response models
validating every answer) on replication's API of a live Berth."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from harborapi import HarborAsyncClient
from harborapi.models import (
    Registry,
    RegistryCredential,
    ReplicationFilter,
    ReplicationPolicy,
    ReplicationTrigger,
)

from tests.conftest import ADMIN
from tests.replication.conftest import DIST_USER

pytestmark = [pytest.mark.live, pytest.mark.clients]


def test_harborapi_manages_registries_policies_and_executions(
    berth: Any, distribution: Any
) -> None:
    client = HarborAsyncClient(
        url=f"{berth.url}/api/v2.0", username=ADMIN[0], secret=ADMIN[1], validate=True
    )

    async def journey() -> None:
        location = await client.create_registry(
            Registry(
                name="hapi-dist",
                type="docker-registry",
                url=distribution.url,
                insecure=True,
                credential=RegistryCredential(
                    type="basic", access_key=DIST_USER[0], access_secret=DIST_USER[1]
                ),
            )
        )
        rid = int(location.rsplit("/", 1)[1])
        registry = await client.get_registry(rid)
        assert (registry.name, registry.url, registry.insecure) == (
            "hapi-dist",
            distribution.url,
            True,
        )
        assert registry.credential is not None
        assert registry.credential.access_secret == ""
        assert [r.id for r in await client.get_registries() if r.name == "hapi-dist"] == [rid]
        info = await client.get_registry_info(rid)
        assert info.type == "docker-registry"
        assert "docker-registry" in await client.get_registry_adapters()
        providers = await client.get_registry_providers()
        assert providers is not None

        policy_location = await client.create_replication_policy(
            ReplicationPolicy(
                name="hapi-push",
                dest_registry=registry,
                dest_namespace="mirror",
                filters=[ReplicationFilter(type="name", value="app/**", decoration="matches")],
                trigger=ReplicationTrigger(type="manual"),
                override=True,
                enabled=True,
                speed=-1,
            )
        )
        pid = int(policy_location.rsplit("/", 1)[1])
        policy = await client.get_replication_policy(pid)
        assert policy.dest_registry is not None and policy.dest_registry.id == rid
        assert policy.filters is not None and policy.filters[0].value == "app/**"
        policy.description = "changed by harborapi"
        await client.update_replication_policy(pid, policy)
        assert (await client.get_replication_policy(pid)).description == "changed by harborapi"
        assert pid in [p.id for p in await client.get_replication_policies()]

        execution_location = await client.start_replication(pid)
        eid = int(execution_location.rsplit("/", 1)[1])
        execution = await client.get_replication(eid)
        assert (execution.policy_id, execution.trigger) == (pid, "manual")
        assert eid in [e.id for e in await client.get_replications(policy_id=pid)]
        await client.stop_replication(eid)
        assert (await client.get_replication(eid)).status == "Stopped"
        assert await client.get_replication_tasks(eid) == []

        await client.delete_replication_policy(pid)
        await client.delete_registry(rid)

    asyncio.run(journey())
