"""A repository's artifacts and an artifact's page in the portal: the list's
columns, the page's tags (added through the API's service, by Harbor's roles,
immutability honoured), blobs with sizes, build history from the image config,
the platforms of an index linked to their artifacts, referrers and the manifest;
query counts pinned."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from accounts.models import Member, Project, Role, User
from audit.models import AuditEvent
from audit.services import flush
from registry.models import ImmutableRule, Manifest, Repository, Tag
from tests.registry.helpers import (
    NOTATION,
    OCI_INDEX,
    OCI_MANIFEST,
    InProcess,
    artifact,
    descriptor,
    image,
    sha256,
)

pytestmark = pytest.mark.django_db(transaction=True)

HISTORY = [
    {"created": "2026-01-02T03:04:05Z", "created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
    {
        "created": "2026-01-02T03:04:06Z",
        "created_by": '/bin/sh -c #(nop)  CMD ["sh"]',
        "empty_layer": True,
    },
]


def as_user(username: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(username=username))
    return client


def page_of(manifest: Manifest) -> str:
    return f"/admin/registry/manifest/{manifest.pk}/change/"


@pytest.fixture
def pushed(team, v2):
    """In `team` (dev a developer, guest a guest, maint a maintainer):
    `team/app:v1`, an image whose config has a build history and two layers;
    `team/app:multi`, an index of it (linux/amd64) and of an untagged arm64
    image; a notation signature of v1."""
    reg = InProcess(v2)
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "history": HISTORY, "rootfs": {}}
    ).encode()
    layers = [b"a" * 3000, b"b" * 5000]
    v1, v1_body = reg.push("team/app", "v1", *image(config=config, layers=layers))
    arm_body, arm_blobs = image(config=json.dumps({"architecture": "arm64"}).encode())
    arm, _ = reg.push("team/app", sha256(arm_body), arm_body, arm_blobs)
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            descriptor(OCI_MANIFEST, v1_body, platform={"os": "linux", "architecture": "amd64"}),
            descriptor(
                OCI_MANIFEST,
                arm_body,
                platform={"os": "linux", "architecture": "arm64", "variant": "v8"},
            ),
        ],
    }
    r = reg.put_manifest("team/app", "multi", json.dumps(doc).encode(), OCI_INDEX)
    assert r.status_code == 201, r.content
    sig_body, sig_blobs = artifact(v1_body, NOTATION, b"sig")
    signature, _ = reg.push("team/app", sha256(sig_body), sig_body, sig_blobs)
    return {
        "repo": Repository.objects.get(name="team/app"),
        "v1": Manifest.objects.get(digest=v1),
        "v1_body": v1_body,
        "index": Manifest.objects.get(tags__name="multi"),
        "arm": Manifest.objects.get(digest=arm),
        "signature": signature,
        "layers": layers,
    }


def test_the_artifact_list_shows_digest_tags_size_type_times_platforms_accessories(pushed):
    page = as_user("guest").get(
        f"/admin/registry/manifest/?repository__id__exact={pushed['repo'].pk}"
    )
    assert page.status_code == 200
    text = page.content.decode()
    for column in ("tags", "media type", "size", "platforms", "accessories", "created at"):
        assert column in text.lower(), column
    assert "pulled" in text.lower()
    v1 = pushed["v1"]
    assert v1.digest in text and ">v1<" in text
    # Size: the manifest and the blobs it lists (its config, 8000 bytes of layers).
    config = json.loads(pushed["v1_body"])["config"]["size"]
    row = text[text.index(v1.digest) :]
    row = row[: row.index("</tr>")]
    assert f'<span title="{v1.size + config + 8000}">8.' in row, row
    assert 'class="field-accessories">1<' in row  # its signature
    index_row = text[text.index(pushed["index"].digest) :]
    index_row = index_row[: index_row.index("</tr>")]
    assert 'class="field-platform_count">2<' in index_row


def test_the_artifact_page_shows_layers_history_and_referrers(pushed):
    page = as_user("guest").get(page_of(pushed["v1"]))
    assert page.status_code == 200
    text = page.content.decode()
    layers = text[text.index('id="berth-layers"') :]
    for layer in pushed["layers"]:
        assert sha256(layer) in layers
    assert 'title="3000"' in layers and 'title="5000"' in layers
    history = text[text.index('id="berth-history"') :]
    assert "ADD file:abc in /" in history
    assert "CMD [&quot;sh&quot;]" in history
    assert "2026-01-02T03:04:06Z" in history
    referrers = text[text.index('id="berth-referrers"') :]
    assert pushed["signature"] in referrers and "signature.notation" in referrers
    signature = Manifest.objects.get(digest=pushed["signature"])
    assert page_of(signature) in referrers
    assert "&quot;mediaType&quot;: &quot;application/vnd.oci.image.manifest.v1+json" in text
    back = f"/admin/registry/manifest/?repository__id__exact={pushed['repo'].pk}"
    assert f'<a href="{back}" id="berth-repository-link">team/app</a>' in text


def test_a_config_missing_from_storage_leaves_the_page_without_history(pushed):
    from registry.storage import blob_store

    config = json.loads(pushed["v1_body"])["config"]["digest"]
    blob_store().delete_blob(config)
    page = as_user("guest").get(page_of(pushed["v1"]))
    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="berth-history"' not in text and 'id="berth-layers"' in text


def test_an_index_page_lists_its_platforms_linked_to_their_artifacts(pushed):
    text = as_user("guest").get(page_of(pushed["index"])).content.decode()
    platforms = text[text.index('id="berth-platforms"') :]
    platforms = platforms[: platforms.index("</table>")]
    assert "linux/amd64" in platforms and "linux/arm64/v8" in platforms
    assert f'href="{page_of(pushed["v1"])}"' in platforms
    assert f'href="{page_of(pushed["arm"])}"' in platforms
    assert platforms.count("<a ") == 2
    assert 'id="berth-history"' not in text  # an index has no config


def test_a_developer_adds_a_tag_through_the_api_service_a_guest_cannot(pushed, v2):
    v1 = pushed["v1"]
    url = f"/admin/registry/manifest/{v1.pk}/tags/"
    guest = as_user("guest")
    assert 'id="berth-add-tag"' not in guest.get(page_of(v1)).content.decode()
    assert guest.post(url, {"name": "sneaky"}).status_code == 403
    dev = as_user("dev")
    assert 'id="berth-add-tag"' in dev.get(page_of(v1)).content.decode()
    r = dev.post(url, {"name": "stable"}, follow=True)
    assert r.redirect_chain[-1][0] == page_of(v1)
    assert "stable" in r.content.decode()
    assert Tag.objects.get(repository=pushed["repo"], name="stable").manifest_id == v1.pk
    flush()
    event = AuditEvent.objects.get(operation="create", resource_type="tag")
    assert (event.username, event.resource) == ("dev", "team/app:stable")
    served = v2.get("/v2/team/app/manifests/stable", HTTP_ACCEPT=OCI_MANIFEST)
    assert served.status_code == 200 and served.content == pushed["v1_body"]
    # An existing tag is not moved (immutable or not), a bad name is refused:
    # the service's message on the page, nothing changed.
    r = dev.post(url, {"name": "multi"}, follow=True)
    assert "already exists" in r.content.decode()
    assert Tag.objects.get(repository=pushed["repo"], name="multi").manifest_id != v1.pk
    r = dev.post(url, {"name": "-bad tag"}, follow=True)
    assert Tag.objects.filter(repository=pushed["repo"]).count() == 3
    assert 'class="error"' in r.content.decode()
    assert dev.get(url).status_code == 405


def test_tags_may_be_added_by_outsiders_to_nothing(pushed):
    """An artifact of a private project is a 404 for whoever may not see it."""
    User.objects.create_user("stranger")
    r = as_user("stranger").post(f"/admin/registry/manifest/{pushed['v1'].pk}/tags/", {"name": "x"})
    assert r.status_code in (302, 404)
    assert not Tag.objects.filter(name="x").exists()


def test_immutable_tags_show_no_delete_and_refuse_it(pushed):
    ImmutableRule.objects.create(project=pushed["repo"].project, tag_pattern="v*")
    text = as_user("maint").get(page_of(pushed["v1"])).content.decode()
    tags = text[text.index('id="berth-artifact-tags"') :]
    tags = tags[: tags.index("</table>")]
    assert "Delete tag v1" not in tags
    tag = Tag.objects.get(repository=pushed["repo"], name="v1")
    r = as_user("maint").post(f"/admin/registry/tag/{tag.pk}/delete/", {"post": "yes"}, follow=True)
    assert "immutable" in r.content.decode()
    assert Tag.objects.filter(pk=tag.pk).exists()
    # A mutable tag of the same artifact may be deleted from its link.
    dev = as_user("dev")
    dev.post(f"/admin/registry/manifest/{pushed['v1'].pk}/tags/", {"name": "latest"})
    text = as_user("maint").get(page_of(pushed["v1"])).content.decode()
    assert "Delete tag latest" in text


def test_artifact_page_query_count_is_pinned(pushed, django_assert_num_queries):
    """The session, the user; the artifact with its repository and project
    (once for the page's context and Django's change view), its tags; the
    immutable rules; the role (once: accounts.access.roles_remembered); the
    payload; the build history's two blob checks; the referrers; the user's
    memberships (the admin's scope); the content type."""
    guest = as_user("guest")
    Member.objects.create(
        project=Project.objects.create(name="more", owner_id=1),
        user=User.objects.get(username="guest"),
        role=Role.GUEST,
    )
    with django_assert_num_queries(12):
        assert guest.get(page_of(pushed["v1"])).status_code == 200
