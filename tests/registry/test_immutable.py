"""Tag immutability (Harbor's immutable tag rules; the second half of case C26):
a tag a rule protects can be created, never moved or deleted — not even by the
sysadmin, not through /v2, `?tag=`, the API's tag/artifact/repository deletes."""

from __future__ import annotations

import concurrent.futures
import json
import os

import pytest
import requests

from registry.models import ImmutableRule, Tag
from tests.conftest import ADMIN
from tests.registry.helpers import OCI_MANIFEST, InProcess, Remote, image, sha256
from tests.roles import api

pytestmark = pytest.mark.django_db(transaction=True)

RULES = "/api/v2.0/projects/team/immutabletagrules"


def rule(tag: str, repo: str = "**", tag_dec: str = "matches", repo_dec: str = "repoMatches"):
    return {
        "action": "immutable",
        "template": "immutable_template",
        "tag_selectors": [{"kind": "doublestar", "decoration": tag_dec, "pattern": tag}],
        "scope_selectors": {
            "repository": [{"kind": "doublestar", "decoration": repo_dec, "pattern": repo}]
        },
    }


def post(client, path: str, payload) -> requests.Response:
    return client.post(path, data=json.dumps(payload), content_type="application/json")


def put(client, path: str, payload) -> requests.Response:
    return client.put(path, data=json.dumps(payload), content_type="application/json")


def make_rule(payload, who: str = "padmin") -> int:
    r = post(api(who), RULES, payload)
    assert r.status_code == 201, r.content
    return int(r["Location"].rsplit("/", 1)[1])


@pytest.fixture
def pushed(team, v2):
    """team/app:v1, team/app:latest and team/other:v1 (each its own manifest)."""
    reg = InProcess(v2)
    digests = {
        "app:v1": reg.push_image("team/app", "v1")[0],
        "app:latest": reg.push_image("team/app", "latest")[0],
        "other:v1": reg.push_image("team/other", "v1")[0],
    }
    return reg, digests


def another_manifest(reg: InProcess, name: str) -> tuple[bytes, str]:
    body, blobs = image(layers=[os.urandom(64)])
    for data in blobs.values():
        reg.put_blob(name, data)
    r = reg.put_manifest(name, sha256(body), body)
    assert r.status_code == 201, r.content
    return body, r["Docker-Content-Digest"]


def test_rules_api_create_list_update_delete(team):
    rule_id = make_rule(rule("v*", "app"))
    r = api("maint").get(RULES)
    assert r.status_code == 200
    assert r["X-Total-Count"] == "1"
    [shown] = r.json()
    assert shown["id"] == rule_id
    assert shown["disabled"] is False
    assert shown["tag_selectors"][0] == {
        "kind": "doublestar",
        "decoration": "matches",
        "pattern": "v*",
        "extras": "",
    }
    assert shown["scope_selectors"]["repository"][0]["pattern"] == "app"
    assert put(api("maint"), f"{RULES}/{rule_id}", {"disabled": True}).status_code == 200
    assert ImmutableRule.objects.get(pk=rule_id).disabled is True
    assert ImmutableRule.objects.get(pk=rule_id).tag_pattern == "v*"  # partial update
    assert api("padmin").delete(f"{RULES}/{rule_id}").status_code == 200
    assert not ImmutableRule.objects.exists()
    assert api("padmin").delete(f"{RULES}/{rule_id}").status_code == 404


def test_rules_api_refuses_bad_rules_and_keeps_nothing(team):
    bad = [
        {},
        rule(""),
        rule("v\x00"),
        rule("x" * 300),
        rule("v*", tag_dec="sometimes"),
        rule("v*", repo_dec="matches"),
        {**rule("v*"), "action": "retain"},
        {**rule("v*"), "tag_selectors": [{"pattern": "a"}, {"pattern": "b"}]},
        {**rule("v*"), "tag_selectors": [{"kind": "regex", "pattern": "a"}]},
        {**rule("v*"), "scope_selectors": {"label": []}},
        {**rule("v*"), "priority": "high"},
        {**rule("v*"), "disabled": "no"},
        [rule("v*")],
    ]
    for payload in bad:
        r = post(api("padmin"), RULES, payload)
        assert r.status_code == 400, (payload, r.status_code, r.content)
        assert r.json()["errors"][0]["code"] == "BAD_REQUEST"
    assert not ImmutableRule.objects.exists()
    make_rule(rule("v*"))
    assert post(api("padmin"), RULES, rule("v*")).status_code == 409  # identical
    for i in range(14):
        make_rule(rule(f"r{i}-*"))
    r = post(api("padmin"), RULES, rule("one-too-many"))
    assert r.status_code == 400
    assert ImmutableRule.objects.count() == 15


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("/".join(["*"] * 33), "more than 32 wildcards"),
        ("{" + ",".join("abcdefghijklmnopqrstuvwxyzABCDEFGH") + "}", "alternatives"),
        ("{{{{{a}}}}}", "nests more than 4 braces"),
        ("[a-", "unclosed '['"),
    ],
)
@pytest.mark.parametrize("scope", ["tag", "repo"])
def test_rules_api_refuses_patterns_over_the_limits(team, pattern, message, scope):
    payload = rule(pattern) if scope == "tag" else rule("v*", repo=pattern)
    r = post(api("padmin"), RULES, payload)
    assert r.status_code == 400, r.content
    [error] = r.json()["errors"]
    assert error["code"] == "BAD_REQUEST"
    assert message in error["message"]
    assert error["message"].startswith(
        "tag_selectors: " if scope == "tag" else "scope_selectors.repository: "
    )
    assert not ImmutableRule.objects.exists()


def test_the_pathological_rule_of_issue_13_costs_a_push_nothing(team, v2):
    """Item 1: this rule with a 30-component repository made every push and
    listing of the project spend 10-30 s in a backtracking regex."""
    pattern = "**/a/" * 10 + "b"
    make_rule(rule("v*", repo=pattern))
    reg = InProcess(v2)
    deep = "team/" + "/".join(["a"] * 30)
    reg.push_image(deep, "v1")
    body, _ = another_manifest(reg, deep)
    assert reg.put_manifest(deep, "v1", body).status_code == 201  # not under the rule
    r = api("admin").get("/api/v2.0/projects/team/repositories/" + deep[5:].replace("/", "%252F"))
    assert r.status_code == 200
    reg.push_image(deep + "/b", "v1")
    body, _ = another_manifest(reg, deep + "/b")
    assert reg.put_manifest(deep + "/b", "v1", body).status_code == 412  # under it


def test_rules_api_access(team):
    rule_id = make_rule(rule("v*"))
    assert api("dev").get(RULES).status_code == 403
    assert post(api("dev"), RULES, rule("x*")).status_code == 403
    assert api("dev").delete(f"{RULES}/{rule_id}").status_code == 403
    assert api("outsider").get(RULES).status_code == 404  # a private project is not shown
    # A rule of another project is not reachable through this one (IDOR).
    r = api("admin").delete(f"/api/v2.0/projects/pub/immutabletagrules/{rule_id}")
    assert r.status_code == 404
    assert ImmutableRule.objects.filter(pk=rule_id).exists()


def test_immutable_tag_cannot_move_even_for_the_sysadmin(pushed):
    reg, digests = pushed
    make_rule(rule("v*"))
    body, digest = another_manifest(reg, "team/app")
    r = reg.put_manifest("team/app", "v1", body)
    assert r.status_code == 412, r.content
    assert r.json()["errors"][0]["code"] == "DENIED"
    assert "immutable" in r.json()["errors"][0]["message"]
    # C26: by digest with ?tag= is the same move.
    r = reg.c.put(f"/v2/team/app/manifests/{digest}?tag=v1", data=body, content_type=OCI_MANIFEST)
    assert r.status_code == 412
    assert (
        Tag.objects.get(repository__name="team/app", name="v1").manifest.digest
        == (digests["app:v1"])
    )
    # Tags no rule names still move; a new protected tag is created once.
    assert reg.put_manifest("team/app", "latest", body).status_code == 201
    assert reg.put_manifest("team/app", "v2", body).status_code == 201
    other_body, _ = another_manifest(reg, "team/app")
    assert reg.put_manifest("team/app", "v2", other_body).status_code == 412
    # Pushing the same manifest to its own immutable tag again is harmless (retries).
    assert reg.put_manifest("team/app", "v2", body).status_code == 201
    assert reg.c.get("/v2/team/app/manifests/v2").content == body


def test_immutable_tag_cannot_be_deleted_anywhere(pushed):
    reg, digests = pushed
    make_rule(rule("v*"))
    admin = api("admin")
    assert reg.c.delete("/v2/team/app/manifests/v1").status_code == 412
    assert reg.c.delete(f"/v2/team/app/manifests/{digests['app:v1']}").status_code == 412
    base = "/api/v2.0/projects/team/repositories"
    r = admin.delete(f"{base}/app/artifacts/v1/tags/v1")
    assert r.status_code == 412
    assert r.json()["errors"][0]["code"] == "PRECONDITION"
    assert admin.delete(f"{base}/app/artifacts/{digests['app:v1']}").status_code == 412
    assert admin.delete(f"{base}/app").status_code == 412
    assert Tag.objects.filter(repository__name="team/app").count() == 2
    # An unprotected tag of the same repository goes; a missing one is 404, not 412.
    assert admin.delete(f"{base}/app/artifacts/latest/tags/latest").status_code == 200
    assert reg.c.delete("/v2/team/app/manifests/v9").status_code == 404


def test_scopes_decorations_and_disabling(pushed):
    reg, _ = pushed
    rule_id = make_rule(rule("v*", repo="app"))
    assert reg.c.delete("/v2/team/app/manifests/v1").status_code == 412
    make_rule(rule("latest", tag_dec="excludes", repo="other"))  # all but latest in other
    assert reg.c.delete("/v2/team/other/manifests/v1").status_code == 412
    # The tag listing says which tags are immutable.
    r = api("admin").get("/api/v2.0/projects/team/repositories/app/artifacts?with_tag=true")
    shown = {t["name"]: t["immutable"] for a in r.json() for t in a["tags"]}
    assert shown == {"v1": True, "latest": False}
    r = api("admin").get("/api/v2.0/projects/team/repositories/app/artifacts/v1/tags")
    assert [t["immutable"] for t in r.json()] == [True]
    assert put(api("padmin"), f"{RULES}/{rule_id}", {"disabled": True}).status_code == 200
    assert reg.c.delete("/v2/team/app/manifests/v1").status_code == 202


def test_copy_onto_an_immutable_tag_is_refused(pushed):
    _, digests = pushed
    make_rule(rule("v*", repo="other"))
    r = api("admin").post("/api/v2.0/projects/team/repositories/other/artifacts?from=team/app:v1")
    assert r.status_code == 412, r.content
    assert (
        Tag.objects.get(repository__name="team/other", name="v1").manifest.digest
        == (digests["other:v1"])
    )


def test_concurrent_first_pushes_to_an_immutable_tag_one_wins(berth):
    """A live server, 16 pushes of different manifests racing to create one
    immutable tag: exactly one is acknowledged and the tag names it."""
    rules = f"{berth.url}/api/v2.0/projects/live/immutabletagrules"
    r = berth.http.post(rules, json=rule("frozen-*", repo="frozen"))
    assert r.status_code == 201, r.text
    reg = Remote(berth.url)
    bodies = []
    for _ in range(16):
        body, blobs = image(layers=[os.urandom(128)])
        for data in blobs.values():
            reg.put_blob("live/frozen", data)
        bodies.append(body)

    def push(body: bytes) -> int:
        return Remote(berth.url).put_manifest("live/frozen", "frozen-1", body).status_code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(push, bodies))
    assert sorted(statuses) == [201] + [412] * 15, statuses
    winner = bodies[statuses.index(201)]
    got = requests.get(f"{berth.url}/v2/live/frozen/manifests/frozen-1", auth=ADMIN)
    assert got.content == winner
