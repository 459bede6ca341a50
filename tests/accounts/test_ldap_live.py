"""Directory users with real registry clients: a live Berth with an LDAP
identity provider (made through the API) on a private slapd; crane and skopeo
log in with the directory password (the token service), push and pull as the
role their nested group holds; the admin group's user pulls anything; a
disabled provider's users are refused while local users still pull."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import ADMIN, BerthServer
from tests.crane import crane_for, one_file_layer
from tests.ldap_server import PASSWORDS, READER_PASSWORD, group_dn

pytestmark = [pytest.mark.clients, pytest.mark.live]


@pytest.fixture
def berth(tmp_path, ldap_directory) -> BerthServer:
    server = BerthServer(tmp_path / "data").start()
    server.create_projects(["corp"])
    r = server.http.post(
        f"{server.url}/api/v2.0/berth/identity-providers",
        json={
            "kind": "ldap",
            "name": "corp",
            "config": ldap_directory.provider_config(),
            "secret": READER_PASSWORD,
        },
    )
    assert r.status_code == 201, r.text
    server.provider_id = r.json()["id"]  # type: ignore[attr-defined]
    # Named by DN for the first time: found in the directory, made a user group.
    r = server.http.post(
        f"{server.url}/api/v2.0/projects/corp/members",
        json={"role_id": 2, "member_group": {"ldap_group_dn": group_dn("engineering")}},
    )
    assert r.status_code == 201, r.text
    r = server.http.get(f"{server.url}/api/v2.0/usergroups")
    assert [(g["group_name"], g["ldap_group_dn"]) for g in r.json()] == [
        ("engineering", group_dn("engineering"))
    ]
    yield server
    server.stop()


def skopeo(*args: str, ok: bool = True) -> str:
    result = subprocess.run(
        ["skopeo", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert (result.returncode == 0) == ok, result.stderr
    return result.stdout if ok else result.stderr


def test_directory_users_push_and_pull_with_their_password(berth, tmp_path):
    ref = f"{berth.addr}/corp/app:v1"
    layer = str(one_file_layer(tmp_path / "layer.tar", "hello.txt", b"from the directory\n"))
    # alice: in engineering through developers (nested) → developer: pushes.
    (tmp_path / "alice").mkdir()
    alice = crane_for(berth.addr, ("alice", PASSWORDS["alice"]), tmp_path / "alice")
    alice("append", "-f", layer, "-t", ref)
    digest = alice("digest", ref).decode().strip()
    # bob: only in ops → nothing in corp.
    (tmp_path / "bob").mkdir()
    bob = crane_for(berth.addr, ("bob", PASSWORDS["bob"]), tmp_path / "bob")
    bob("append", "-f", layer, "-t", f"{berth.addr}/corp/app:bob", ok=False)
    bob("digest", ref, ok=False)
    # carol: the admin group → sysadmin, pulls with skopeo.
    out = skopeo(
        "inspect", "--tls-verify=false", "--creds", f"carol:{PASSWORDS['carol']}", f"docker://{ref}"
    )
    assert digest in out
    # A wrong directory password is refused.
    skopeo(
        "inspect", "--tls-verify=false", "--creds", "alice:wrong-pw", f"docker://{ref}", ok=False
    )
    # Disable the provider: its users are refused, local users are not.
    r = berth.http.put(
        f"{berth.url}/api/v2.0/berth/identity-providers/{berth.provider_id}",
        json={"enabled": False},
    )
    assert r.status_code == 200, r.text
    alice("digest", ref, ok=False)
    skopeo(
        "inspect",
        "--tls-verify=false",
        "--creds",
        f"carol:{PASSWORDS['carol']}",
        f"docker://{ref}",
        ok=False,
    )
    assert digest in skopeo(
        "inspect", "--tls-verify=false", "--creds", ":".join(ADMIN), f"docker://{ref}"
    )
