"""harborapi 0.26.2 (Harbor's async Python client, response validation on)
against a live Berth with a private slapd: Harbor's LDAP configuration keys,
/ldap/*, /usergroups and a group as a project member, each answer parsed into
harborapi's models."""

from __future__ import annotations

import asyncio

import pytest
from harborapi import HarborAsyncClient
from harborapi.exceptions import StatusError
from harborapi.models import Configurations, LdapConf, UserGroup

from tests.conftest import ADMIN, BerthServer
from tests.ldap_server import GROUPS, PASSWORDS, PEOPLE, READER_DN, READER_PASSWORD, group_dn

pytestmark = [pytest.mark.live, pytest.mark.clients]


@pytest.fixture
def berth(tmp_path, ldap_directory) -> BerthServer:
    server = BerthServer(tmp_path / "data").start()
    server.create_projects(["corp"])
    yield server
    server.stop()


def test_harborapi_drives_ldap_and_user_groups(berth, ldap_directory):
    def alices_roles() -> list[tuple[str, int]]:
        r = berth.http.get(
            f"{berth.url}/api/v2.0/projects?name=corp", auth=("alice", PASSWORDS["alice"])
        )
        assert r.status_code == 200, r.text
        return [(p["name"], p["current_user_role_id"]) for p in r.json()]

    async def run() -> None:
        client = HarborAsyncClient(
            url=f"{berth.url}/api/v2.0", username=ADMIN[0], secret=ADMIN[1], validate=True
        )
        await client.update_config(
            Configurations(
                auth_mode="ldap_auth",
                ldap_url=ldap_directory.url,
                ldap_search_dn=READER_DN,
                ldap_search_password=READER_PASSWORD,
                ldap_base_dn=PEOPLE,
                ldap_uid="uid",
                ldap_scope=2,
                ldap_filter="(objectClass=inetOrgPerson)",
                ldap_group_base_dn=GROUPS,
                ldap_group_search_filter="(objectClass=groupOfNames)",
                ldap_group_attribute_name="cn",
            )
        )
        config = await client.get_config()
        assert config.auth_mode.value == "ldap_auth"
        assert config.ldap_base_dn.value == PEOPLE
        assert (await client.get_system_info()).auth_mode == "ldap_auth"

        ping = await client.ping_ldap()
        assert ping.success is True
        ping = await client.ping_ldap(LdapConf(ldap_search_password="wrong"))
        assert ping.success is False

        users = await client.search_ldap_users("alice")
        assert [(u.username, u.email) for u in users] == [("alice", "alice@example.org")]
        await client.import_ldap_users(["dave"])
        with pytest.raises(StatusError):
            await client.import_ldap_users(["nobody"])

        groups = await client.search_ldap_groups(group_name="engineering")
        assert [g.ldap_group_dn for g in groups] == [group_dn("engineering")]

        location = await client.create_usergroup(
            UserGroup(group_name="eng", group_type=1, ldap_group_dn=group_dn("engineering"))
        )
        gid = int(location.rsplit("/", 1)[1])
        group = await client.get_usergroup(gid)
        assert (group.group_name, group.group_type) == ("eng", 1)
        assert [g.group_name for g in await client.get_usergroups()] == ["eng"]
        assert [g.id for g in await client.search_usergroups("en")] == [gid]
        await client.update_usergroup(gid, UserGroup(group_name="engineering"))
        assert (await client.get_usergroup(gid)).group_name == "engineering"

        await client.add_project_member_group("corp", group_dn("engineering"), 2)
        members = await client.get_project_members("corp")
        assert {(m.entity_name, m.entity_type, m.role_id) for m in members} >= {
            ("engineering", "g", 2)
        }
        # alice is in engineering through developers: a developer of corp.
        assert alices_roles() == [("corp", 2)]
        await client.delete_usergroup(gid)
        with pytest.raises(StatusError):
            await client.get_usergroup(gid)

    asyncio.run(run())
    # The group is gone, and with it alice's role.
    assert alices_roles() == []
