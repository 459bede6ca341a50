"""The identity contract for Berth's own sources: local users (Django's
``AUTHENTICATION_BACKENDS``, with the verified-credential cache) and robots (the
seam's own branch)."""

from __future__ import annotations

import pytest

from accounts.models import Member, Robot, Role, User
from tests.accounts.identity_contract import PROJECT, IdentityContract, Subject
from tests.roles import api

PASSWORD = "Contract123"


class TestLocalUsers(IdentityContract):
    @pytest.fixture
    def subject(self, project) -> Subject:
        user = User.objects.create_user("alice", password=PASSWORD)
        Member.objects.create(project=project, user=user, role=Role.GUEST)

        def disable() -> None:
            User.objects.filter(pk=user.pk).update(is_active=False)

        def change_secret() -> str:
            fresh = User.objects.get(pk=user.pk)
            fresh.set_password("Changed123")
            fresh.save()
            return "Changed123"

        return Subject("alice", PASSWORD, "mallory", disable, change_secret)


class TestRobots(IdentityContract):
    @pytest.fixture
    def subject(self, project) -> Subject:
        r = api("admin").post(
            "/api/v2.0/robots",
            data={
                "name": "ci",
                "level": "project",
                "duration": -1,
                "permissions": [
                    {
                        "kind": "project",
                        "namespace": PROJECT,
                        "access": [
                            {"resource": "repository", "action": "pull"},
                            {"resource": "repository", "action": "list"},
                        ],
                    }
                ],
            },
            content_type="application/json",
        )
        assert r.status_code == 201, r.content
        name, secret, rid = r.json()["name"], r.json()["secret"], r.json()["id"]

        def disable() -> None:
            Robot.objects.filter(pk=rid).update(disabled=True)

        def change_secret() -> str:
            r = api("admin").patch(
                f"/api/v2.0/robots/{rid}", data={}, content_type="application/json"
            )
            assert r.status_code == 200, r.content
            return r.json()["secret"]

        return Subject(name, secret, f"robot${PROJECT}+nobody", disable, change_secret)
