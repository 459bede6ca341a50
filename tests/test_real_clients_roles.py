"""docker against Berth's access control: each role, a non-member, anonymous,
and a robot account — what Harbor's users do every day."""

from __future__ import annotations

import pytest

from tests.clients import ClientError, DockerDaemon, build_scratch_image

pytestmark = pytest.mark.clients

PASSWORD = "Secret123"
KEEP = "local/keep:v1"


@pytest.fixture(scope="module")
def world(berth, tmp_path_factory):
    """Private project `rbac` with a developer and a guest, an outsider, a robot
    that may push, and a docker daemon with one image built."""
    http, url = berth.http, berth.url
    r = http.post(f"{url}/api/v2.0/projects", json={"project_name": "rbac"})
    assert r.status_code == 201, r.text
    for name, role in (("rdev", 2), ("rguest", 3), ("routsider", None)):
        r = http.post(
            f"{url}/api/v2.0/users",
            json={"username": name, "password": PASSWORD, "email": f"{name}@x"},
        )
        assert r.status_code == 201, r.text
        if role:
            r = http.post(
                f"{url}/api/v2.0/projects/rbac/members",
                json={"role_id": role, "member_user": {"username": name}},
            )
            assert r.status_code == 201, r.text
    r = http.post(
        f"{url}/api/v2.0/robots",
        json={
            "name": "ci",
            "level": "project",
            "duration": -1,
            "permissions": [
                {
                    "kind": "project",
                    "namespace": "rbac",
                    "access": [
                        {"resource": "repository", "action": "pull"},
                        {"resource": "repository", "action": "push"},
                    ],
                }
            ],
        },
    )
    assert r.status_code == 201, r.text
    robot = (r.json()["name"], r.json()["secret"])
    tmp = tmp_path_factory.mktemp("roles")
    daemon = DockerDaemon().start(tmp / "daemon")
    try:
        ref = f"{berth.addr}/rbac/app:v1"
        image_id = build_scratch_image(daemon, ref, tmp / "build", layers=2)
        daemon.tag(ref, KEEP)  # a local tag that keeps the image whatever tests remove
        yield daemon, berth.addr, image_id, robot
    finally:
        daemon.stop()


def login(daemon: DockerDaemon, registry: str, user: str, password: str = PASSWORD) -> None:
    daemon.logout(registry)
    daemon.login(registry, user, password)


def test_developer_pushes(world):
    daemon, registry, _image_id, _ = world
    login(daemon, registry, "rdev")
    daemon.tag(KEEP, f"{registry}/rbac/app:v1")
    assert daemon.push(f"{registry}/rbac/app:v1").startswith("sha256:")


def test_guest_pulls_but_cannot_push(world):
    daemon, registry, image_id, _ = world
    login(daemon, registry, "rdev")
    daemon.tag(KEEP, f"{registry}/rbac/app:v1")
    daemon.push(f"{registry}/rbac/app:v1")
    login(daemon, registry, "rguest")
    daemon.tag(KEEP, f"{registry}/rbac/app:guest")
    with pytest.raises(ClientError) as refused:
        daemon.push(f"{registry}/rbac/app:guest")
    assert "denied" in str(refused.value).lower()
    daemon.rmi(f"{registry}/rbac/app:v1", f"{registry}/rbac/app:guest", force=True)
    assert daemon.pull(f"{registry}/rbac/app:v1") == image_id


def test_non_member_and_anonymous_cannot_pull_private(world):
    daemon, registry, _image_id, _ = world
    login(daemon, registry, "rdev")
    daemon.tag(KEEP, f"{registry}/rbac/app:v1")
    daemon.push(f"{registry}/rbac/app:v1")
    daemon.rmi(f"{registry}/rbac/app:v1", force=True)
    login(daemon, registry, "routsider")
    with pytest.raises(ClientError):
        daemon.pull(f"{registry}/rbac/app:v1")
    daemon.logout(registry)
    with pytest.raises(ClientError):
        daemon.pull(f"{registry}/rbac/app:v1")
    with pytest.raises(ClientError):
        daemon.login(registry, "rdev", "WrongPass1")


def test_anonymous_pulls_public_project(world, berth):
    daemon, registry, image_id, _ = world
    login(daemon, registry, "admin", berth.http.auth[1])
    daemon.tag(KEEP, f"{registry}/library/roles-public:v1")
    daemon.push(f"{registry}/library/roles-public:v1")
    daemon.logout(registry)
    daemon.rmi(f"{registry}/library/roles-public:v1", force=True)
    assert daemon.pull(f"{registry}/library/roles-public:v1") == image_id
    with pytest.raises(ClientError):
        daemon.push(f"{registry}/library/roles-public:v1")


def test_robot_logs_in_and_pushes(world):
    daemon, registry, _image_id, (name, secret) = world
    login(daemon, registry, name, secret)
    daemon.tag(KEEP, f"{registry}/rbac/app:robot")
    assert daemon.push(f"{registry}/rbac/app:robot").startswith("sha256:")
    daemon.tag(KEEP, f"{registry}/library/by-robot:v1")
    with pytest.raises(ClientError):
        daemon.push(f"{registry}/library/by-robot:v1")
