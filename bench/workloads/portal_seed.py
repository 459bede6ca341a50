"""Seed a Berth for the portal workload (bench/workloads/portal.py), run inside
Berth's own environment: ``python bench/workloads/portal_seed.py PROJECTS
ARTIFACTS PASSWORD`` from the source tree, with Berth's settings and data
directory in the environment.

Rows are bulk-inserted: pushing 100,000 manifests through /v2 takes longer than
a benchmark should spend seeding, and the pages measured read the same rows a
push writes (a manifest, its blob links, a tag on every tenth). What it makes:

- ``PROJECTS`` projects ``pp-00000``…, every other one public;
- the user ``portaldev`` (password ``PASSWORD``), a developer in every tenth
  of them and in ``portal``;
- the private project ``portal`` with the repository ``portal/app`` holding
  ``ARTIFACTS`` image manifests, each linking a shared config blob and a layer
  blob of its own, every tenth tagged ``v<i>``.

Prints one JSON line: the ids the workload needs.
"""

from __future__ import annotations

import hashlib
import json
import sys

import django

BATCH = 5000


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def main() -> None:
    projects, artifacts, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    django.setup()
    from django.db import transaction

    from accounts.models import Member, Project, Role, User
    from registry.models import Blob, Manifest, ManifestBlob, Repository, RepositoryBlob, Tag

    with transaction.atomic():
        user = User.objects.create_user("portaldev", password=password)
        Project.objects.bulk_create(
            [Project(name=f"pp-{i:05d}", owner_id=1, public=i % 2 == 0) for i in range(projects)],
            batch_size=BATCH,
        )
        ids = Project.objects.filter(name__startswith="pp-").values_list("pk", flat=True)
        Member.objects.bulk_create(
            [Member(project_id=pk, user=user, role=Role.DEVELOPER) for pk in ids[::10]],
            batch_size=BATCH,
        )
        project = Project.objects.create(name="portal", owner_id=1, public=False)
        Member.objects.create(project=project, user=user, role=Role.DEVELOPER)
        repo = Repository.objects.create(project=project, name="portal/app")
        config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}'
        # The manifests workload may have pushed this config already.
        shared, _ = Blob.objects.get_or_create(
            digest=digest(config), defaults={"size": len(config)}
        )
        RepositoryBlob.objects.create(repository=repo, blob=shared)
    for start in range(0, artifacts, BATCH):
        rows = range(start, min(start + BATCH, artifacts))
        with transaction.atomic():
            layers = Blob.objects.bulk_create(
                [Blob(digest=digest(b"layer %d" % i), size=1000 + i) for i in rows]
            )
            RepositoryBlob.objects.bulk_create(
                [RepositoryBlob(repository=repo, blob=blob) for blob in layers]
            )
            manifests = []
            for layer in layers:
                body = json.dumps(
                    {
                        "schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": {
                            "mediaType": "application/vnd.oci.image.config.v1+json",
                            "digest": shared.digest,
                            "size": shared.size,
                        },
                        "layers": [
                            {
                                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                "digest": layer.digest,
                                "size": layer.size,
                            }
                        ],
                    }
                ).encode()
                manifests.append(
                    Manifest(
                        repository=repo,
                        digest=digest(body),
                        media_type="application/vnd.oci.image.manifest.v1+json",
                        artifact_type="application/vnd.oci.image.config.v1+json",
                        payload=body,
                        size=len(body),
                    )
                )
            manifests = Manifest.objects.bulk_create(manifests)
            if manifests[0].pk is None:  # a backend that returns no ids
                by_digest = dict(
                    Manifest.objects.filter(
                        repository=repo, digest__in=[m.digest for m in manifests]
                    ).values_list("digest", "pk")
                )
                for m in manifests:
                    m.pk = by_digest[m.digest]
            links = []
            for m, layer in zip(manifests, layers, strict=True):
                links += [
                    ManifestBlob(manifest=m, blob=shared),
                    ManifestBlob(manifest=m, blob=layer),
                ]
            ManifestBlob.objects.bulk_create(links)
            Tag.objects.bulk_create(
                [
                    Tag(repository=repo, name=f"v{i}", manifest=m)
                    for i, m in zip(rows, manifests, strict=True)
                    if i % 10 == 0
                ]
            )
    newest = Manifest.objects.filter(repository=repo).order_by("-pk").first()
    print(
        json.dumps(
            {
                "project": project.pk,
                "repository": repo.pk,
                "artifact": newest.pk if newest else None,
                "projects": projects,
                "artifacts": artifacts,
            }
        )
    )


if __name__ == "__main__":
    main()
