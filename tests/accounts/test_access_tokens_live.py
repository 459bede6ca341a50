"""Personal access tokens with real clients against a live Berth (issue 16,
docs/tokens.md): ``docker login`` with a token and push and pull; revoked,
expired, pull-only and removed-member tokens refused; crane and skopeo with a
token as the password; the CLI secret with docker; the secret never in the
server's log nor twice in its answers."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import requests

from tests.clients import ClientError, DockerDaemon, Skopeo, build_scratch_image
from tests.conftest import BerthServer
from tests.crane import crane_for, one_file_layer
from tests.support import wait_until

pytestmark = pytest.mark.clients

PASSWORD = "Secret123"
KEEP = "local/keep:v1"


@pytest.fixture(scope="module")
def berth(tmp_path_factory) -> BerthServer:
    """A Berth of its own: re-checks principals every second, logs everything
    (the secret must not be in any line)."""
    server = BerthServer(
        tmp_path_factory.mktemp("tokens") / "data",
        env={"BERTH_PRINCIPAL_RECHECK_SECONDS": "1", "BERTH_LOG_LEVEL": "DEBUG"},
    ).start()
    server.create_projects(["tok"])
    for name, role in (("sso", 2), ("viewer", 3)):
        r = server.http.post(
            f"{server.url}/api/v2.0/users",
            json={"username": name, "password": PASSWORD, "email": f"{name}@x"},
        )
        assert r.status_code == 201, r.text
        r = server.http.post(
            f"{server.url}/api/v2.0/projects/tok/members",
            json={"role_id": role, "member_user": {"username": name}},
        )
        assert r.status_code == 201, r.text
    yield server
    server.stop()


@pytest.fixture(scope="module")
def daemon(berth, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tokens-docker")
    docker = DockerDaemon().start(tmp / "daemon")
    try:
        build_scratch_image(docker, KEEP, tmp / "build", layers=2)
        yield docker
    finally:
        docker.stop()


SECRETS: list[str] = []  # every secret made here: none may be in the server's log


def make_token(berth: BerthServer, user: str, name: str, *actions: str, **extra) -> dict:
    r = requests.post(
        f"{berth.url}/api/v2.0/berth/tokens",
        json={
            "name": name,
            "permissions": [
                {
                    "kind": "project",
                    "namespace": "tok",
                    "access": [{"resource": "repository", "action": a} for a in actions],
                }
            ],
            **extra,
        },
        auth=(user, PASSWORD),
    )
    assert r.status_code == 201, r.text
    SECRETS.append(r.json()["secret"])
    return r.json()


def revoke(berth: BerthServer, user: str, token: dict) -> None:
    r = requests.delete(f"{berth.url}/api/v2.0/berth/tokens/{token['id']}", auth=(user, PASSWORD))
    assert r.status_code == 200, r.text


def login(daemon: DockerDaemon, registry: str, user: str, secret: str) -> None:
    daemon.logout(registry)
    daemon.login(registry, user, secret)


def push(daemon: DockerDaemon, ref: str) -> str:
    daemon.tag(KEEP, ref)
    return daemon.push(ref)


def test_docker_logs_in_with_a_token_pushes_and_pulls_until_it_is_revoked(berth, daemon):
    token = make_token(berth, "sso", "laptop", "pull", "push")
    ref = f"{berth.addr}/tok/app:v1"
    login(daemon, berth.addr, "sso", token["secret"])
    assert push(daemon, ref).startswith("sha256:")
    image_id = daemon.image_id(ref)
    daemon.rmi(ref, force=True)
    assert daemon.pull(ref) == image_id
    daemon.rmi(ref, force=True)

    revoke(berth, "sso", token)
    with pytest.raises(ClientError):
        daemon.pull(ref)
    daemon.logout(berth.addr)
    with pytest.raises(ClientError):
        daemon.login(berth.addr, "sso", token["secret"])
    # the list shows when it was last used (written off the request path)
    wait_until(
        lambda: (
            requests.get(f"{berth.url}/api/v2.0/berth/tokens", auth=("sso", PASSWORD)).json()[-1][
                "last_used_at"
            ]
            is not None
        ),
        what="the last use written",
    )


def test_a_registry_token_from_a_revoked_token_stops_within_the_recheck_interval(berth, tmp_path):
    token = make_token(berth, "sso", "ci", "pull", "push")
    r = requests.get(
        f"{berth.url}/service/token",
        params={"service": "harbor-registry", "scope": "repository:tok/crane:pull,push"},
        auth=("sso", token["secret"]),
    )
    assert r.status_code == 200, r.text
    bearer = r.json()["token"]
    layer = str(one_file_layer(tmp_path / "layer.tar", "hello.txt", b"hello\n"))
    crane = crane_for(berth.addr, bearer, tmp_path)  # the registry token itself
    crane("append", "-f", layer, "-t", f"{berth.addr}/tok/crane:v1")
    revoke(berth, "sso", token)
    start = f"{berth.url}/v2/tok/crane/blobs/uploads/"
    wait_until(
        lambda: (
            requests.post(start, headers={"Authorization": f"Bearer {bearer}"}).status_code == 401
        ),
        what="the revoked token's registry token refused",
    )
    crane("append", "-f", layer, "-t", f"{berth.addr}/tok/crane:v2", ok=False)


def test_crane_and_skopeo_take_a_token_as_the_password(berth, daemon, tmp_path):
    token = make_token(berth, "sso", "tools", "pull", "push")
    layer = str(one_file_layer(tmp_path / "layer.tar", "tool.txt", b"tools\n"))
    crane = crane_for(berth.addr, ("sso", token["secret"]), tmp_path)
    crane("append", "-f", layer, "-t", f"{berth.addr}/tok/tools:v1")
    digest = crane("digest", f"{berth.addr}/tok/tools:v1").decode().strip()
    skopeo = Skopeo(tmp_path / "skopeo")
    copied = skopeo.copy(
        f"docker://{berth.addr}/tok/tools:v1",
        f"docker://{berth.addr}/tok/tools:v2",
        src_creds=f"sso:{token['secret']}",
        dest_creds=f"sso:{token['secret']}",
    )
    assert copied == digest
    assert crane("digest", f"{berth.addr}/tok/tools:v2").decode().strip() == digest


def test_a_pull_only_token_cannot_push(berth, daemon):
    owner = make_token(berth, "sso", "owner", "pull", "push")
    login(daemon, berth.addr, "sso", owner["secret"])
    push(daemon, f"{berth.addr}/tok/ro:v1")
    reader = make_token(berth, "sso", "reader", "pull")
    login(daemon, berth.addr, "sso", reader["secret"])
    with pytest.raises(ClientError) as refused:
        push(daemon, f"{berth.addr}/tok/ro:v2")
    assert "denied" in str(refused.value).lower()
    daemon.rmi(f"{berth.addr}/tok/ro:v1", f"{berth.addr}/tok/ro:v2", force=True)
    daemon.pull(f"{berth.addr}/tok/ro:v1")


def test_an_expired_token_is_refused(berth, daemon):
    token = make_token(berth, "sso", "short", "pull", "push", duration=1)
    login(daemon, berth.addr, "sso", token["secret"])
    past = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)).isoformat()
    berth.manage(
        "shell",
        "-c",
        "from accounts.models import PersonalAccessToken as T; "
        f"T.objects.filter(pk={token['id']}).update(expires_at='{past}')",
    )
    daemon.logout(berth.addr)
    with pytest.raises(ClientError):
        daemon.login(berth.addr, "sso", token["secret"])


def test_a_removed_member_s_token_pulls_nothing(berth, daemon):
    owner = make_token(berth, "sso", "pusher", "pull", "push")
    login(daemon, berth.addr, "sso", owner["secret"])
    ref = f"{berth.addr}/tok/members:v1"
    push(daemon, ref)
    token = make_token(berth, "viewer", "pull", "pull")
    login(daemon, berth.addr, "viewer", token["secret"])
    daemon.rmi(ref, force=True)
    daemon.pull(ref)
    members = berth.http.get(f"{berth.url}/api/v2.0/projects/tok/members?entityname=viewer")
    (member,) = members.json()
    r = berth.http.delete(f"{berth.url}/api/v2.0/projects/tok/members/{member['id']}")
    assert r.status_code == 200, r.text
    daemon.rmi(ref, force=True)
    with pytest.raises(ClientError):
        daemon.pull(ref)


def test_the_cli_secret_logs_docker_in(berth, daemon):
    users = berth.http.get(f"{berth.url}/api/v2.0/users/search?username=sso").json()
    uid = next(u["user_id"] for u in users if u["username"] == "sso")
    r = requests.put(
        f"{berth.url}/api/v2.0/users/{uid}/cli_secret",
        json={"secret": "CliSecret9z"},
        auth=("sso", PASSWORD),
    )
    assert r.status_code == 200, r.text
    SECRETS.append("CliSecret9z")
    current = requests.get(f"{berth.url}/api/v2.0/users/current", auth=("sso", PASSWORD))
    assert current.json()["oidc_user_meta"]["secret"] == "CliSecret9z"
    login(daemon, berth.addr, "sso", "CliSecret9z")
    assert push(daemon, f"{berth.addr}/tok/cli:v1").startswith("sha256:")


def test_no_secret_in_the_log_nor_twice_in_answers(berth):
    token = make_token(berth, "sso", "twice", "pull")
    listed = requests.get(f"{berth.url}/api/v2.0/berth/tokens", auth=("sso", PASSWORD)).text
    one = requests.get(
        f"{berth.url}/api/v2.0/berth/tokens/{token['id']}", auth=("sso", PASSWORD)
    ).text
    everyone = berth.http.get(f"{berth.url}/api/v2.0/berth/tokens?page_size=100").text
    logs = berth.http.get(f"{berth.url}/api/v2.0/audit-logs?page_size=100").text
    for secret in SECRETS:
        for answer in (listed, one, everyone, logs):
            assert secret not in answer
    log = Path(berth.log_path).read_text()
    assert "Berth is running" in log  # the server's own output, at DEBUG level
    leaked = [secret for secret in SECRETS if secret in log]
    assert leaked == []
