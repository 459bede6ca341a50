"""Issue 13, item 5: every path that creates a repository checks its name against
the OCI distribution grammar in one place (registry/services/repositories.py:
repositories_ensure, through registry/reference.py), so a copy through Harbor's
API can no more create ``team/../../etc`` than a push through /v2 can."""

from __future__ import annotations

import pathlib
import re
from urllib.parse import quote

import pytest

from registry.errors import Code, RegistryError
from registry.models import Repository
from registry.services.repositories import repositories_ensure, repository_ensure
from tests.registry.helpers import OCI_MANIFEST, InProcess, image
from tests.roles import api

pytestmark = pytest.mark.django_db(transaction=True)

# (as a Harbor client sends it in the API path, as it reaches the service)
BAD = {
    "traversal": ("..%252F..%252Fetc", "../../etc"),
    "upper case and space": ("UPPER%20Case", "UPPER Case"),
    "empty component": ("a%252F%252Fb", "a//b"),
    "nul": ("a%2500b", "a\x00b"),
    "right-to-left override": ("%E2%80%AEgpj.exe", "\u202egpj.exe"),
}


@pytest.fixture
def source(team, v2):
    reg = InProcess(v2)
    reg.push_image("team/app", "v1")
    return reg


def catalog(v2) -> list[str]:
    r = v2.get("/v2/_catalog")
    assert r.status_code == 200
    return r.json()["repositories"]


@pytest.mark.parametrize("case", BAD)
def test_api_copy_refuses_a_bad_target_name(source, case):
    raw, _ = BAD[case]
    before = catalog(source.c)
    r = api("admin").post(f"/api/v2.0/projects/team/repositories/{raw}/artifacts?from=team/app:v1")
    assert r.status_code == 400, r.content
    assert r.json()["errors"][0]["code"] == "BAD_REQUEST"
    assert "repository name" in r.json()["errors"][0]["message"]
    assert catalog(source.c) == before == ["team/app"]
    assert list(Repository.objects.values_list("name", flat=True)) == ["team/app"]


@pytest.mark.parametrize("case", BAD)
def test_v2_push_refuses_a_bad_name(source, case):
    _, name = BAD[case]
    body, _ = image()
    path = quote(f"team/{name}", safe="/")
    pushes = [
        source.c.put(f"/v2/{path}/manifests/v1", data=body, content_type=OCI_MANIFEST),
        source.c.post(f"/v2/{path}/blobs/uploads/"),
    ]
    assert [(r.status_code, r.json()["errors"][0]["code"]) for r in pushes] == [
        (400, "NAME_INVALID"),
        (400, "NAME_INVALID"),
    ]
    assert catalog(source.c) == ["team/app"]


@pytest.mark.parametrize("case", BAD)
def test_the_service_refuses_a_bad_name_before_any_query(team, case, django_assert_num_queries):
    _, name = BAD[case]
    with django_assert_num_queries(0), pytest.raises(RegistryError) as caught:
        repository_ensure(name=f"team/{name}")
    assert caught.value.code is Code.NAME_INVALID
    found = repositories_ensure([f"team/{name}", "team/fine"])
    assert isinstance(found[f"team/{name}"], RegistryError)
    assert isinstance(found["team/fine"], Repository)
    assert list(Repository.objects.values_list("name", flat=True)) == ["team/fine"]


def test_only_the_repository_service_creates_repositories():
    """The class stays closed: a new path that writes Repository rows itself
    would skip the name check."""
    root = pathlib.Path(__file__).resolve().parents[2]
    writes = re.compile(
        r"(?<!class )\bRepository\("
        r"|Repository\.objects\.(create|bulk_create|get_or_create|update_or_create)\b"
    )
    offenders = [
        str(path.relative_to(root))
        for app in ("kit", "audit", "accounts", "registry", "portal")
        for path in (root / app).rglob("*.py")
        if "migrations" not in path.parts
        and path.relative_to(root).as_posix() != "registry/services/repositories.py"
        and writes.search(path.read_text())
    ]
    assert offenders == []
