"""Harbor's labels: global ones (scope ``g``) that system administrators manage
and any artifact may carry, and project ones (scope ``p``) that a project's
admins and maintainers manage and only that project's artifacts may carry.
Developers and up attach and detach them (Harbor's ``artifact-label``).
Replication and retention select artifacts by label (``labelled``).

Every function takes the actor, decides through ``accounts.access`` and audits
the change in its transaction. A label the caller may not see, a label of
another project addressed through this project's artifact (C23) and a label
that does not exist all answer the same "label N not found".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from accounts import access
from accounts.access import Actor
from accounts.api.render import ts
from accounts.errors import Conflict, Denied, Invalid, NotFound, Unauthenticated
from accounts.models import Project
from audit.events import Operation, Resource
from audit.services import record
from registry.models import ArtifactLabel, Label, Manifest, Repository
from registry.services.artifacts import artifact_get

MAX_NAME = 128
MAX_DESCRIPTION = 1024
MAX_COLOR = 32
SCOPES = (Label.Scope.GLOBAL, Label.Scope.PROJECT)


def _missing(label_id: int) -> NotFound:
    return NotFound(message=f"label {label_id} not found")


def _require(actor: Actor, label: Label, action: str) -> None:
    """``label:action`` on this label: system scope for a global label (which
    everyone may read, as everyone may list them), the project's for a
    project label (404 when the project is not visible to the actor)."""
    if label.scope == Label.Scope.GLOBAL:
        if action == "read" or access.system_can(actor, "label", action):
            return
        if not actor.authenticated:
            raise Unauthenticated()
        raise Denied(f"only system administrators may {action} global labels")
    assert label.project is not None
    try:
        access.require(actor, "label", action, label.project)
    except NotFound:
        raise _missing(label.pk) from None


def _text(value: Any, name: str, limit: int, *, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise Invalid(f"{name} must be a string")
    if required and not value.strip():
        raise Invalid(f"{name} is required")
    if len(value) > limit:
        raise Invalid(f"{name} is longer than {limit} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise Invalid(f"{name} holds a control character")
    return value


def _visible_project(actor: Actor, project_id: int | None) -> Project:
    """The project of a project label, by id: missing and invisible alike 404."""
    if not project_id:
        raise Invalid("project_id is required for a project label")
    project = access.visible_projects(actor).filter(pk=project_id).first()
    if project is None:
        raise NotFound(message=f"project {project_id} not found")
    return project


def _record(actor: Actor, operation: Operation, label: Label, detail: Any = None) -> None:
    record(
        actor=actor,
        operation=operation,
        resource_type=Resource.LABEL,
        resource=label.name if label.project is None else f"{label.project.name}: {label.name}",
        project=label.project,
        detail=detail,
    )


def _saved(label: Label, **kwargs: Any) -> None:
    """Save, a name taken in the label's scope being a 409 (the unique
    constraints decide, so two racing creates cannot both pass)."""
    try:
        with transaction.atomic():
            label.save(**kwargs)
    except IntegrityError:
        raise Conflict(f"label {label.name} already exists") from None


# Labels -------------------------------------------------------------------------


def label_list(
    *,
    actor: Actor,
    scope: str | None = None,
    project_id: int | None = None,
    name: str | None = None,
) -> QuerySet[Label]:
    """Global labels (anyone may list them, as in Harbor), or a project's
    (``label:list`` there); ``name`` matches a part of the name."""
    if scope not in SCOPES:
        raise Invalid(f"invalid scope: {scope or ''}")
    if scope == Label.Scope.GLOBAL:
        rows = Label.objects.filter(scope=scope)
    else:
        if not project_id:
            raise Invalid("must with project ID when to query project labels")
        project = _visible_project(actor, project_id)
        access.require(actor, "label", "list", project)
        rows = Label.objects.filter(scope=scope, project=project)
    if name:
        rows = rows.filter(name__icontains=name)
    return rows.select_related("project")


def label_create(
    *,
    actor: Actor,
    name: Any = None,
    scope: Any = None,
    project_id: int | None = None,
    description: Any = "",
    color: Any = "",
) -> Label:
    if scope not in SCOPES:
        raise Invalid(f"unrecognized scope {scope}")
    label = Label(scope=scope)
    if scope == Label.Scope.PROJECT:
        label.project = _visible_project(actor, project_id)
    _require(actor, label, "create")
    label.name = _text(name, "name", MAX_NAME, required=True)
    label.description = _text(description, "description", MAX_DESCRIPTION)
    label.color = _text(color, "color", MAX_COLOR)
    with transaction.atomic():
        _saved(label)
        _record(actor, Operation.CREATE, label)
    return label


def label_get(*, actor: Actor, label_id: int, action: str = "read") -> Label:
    label = Label.objects.select_related("project").filter(pk=label_id).first()
    if label is None:
        raise _missing(label_id)
    _require(actor, label, action)
    return label


def label_update(
    *,
    actor: Actor,
    label_id: int,
    name: Any = None,
    description: Any = None,
    color: Any = None,
) -> Label:
    """Name, description and color; the fields not given keep their value
    (scope and project never change)."""
    with transaction.atomic():
        label = label_get(actor=actor, label_id=label_id, action="update")
        if name is not None:
            label.name = _text(name, "name", MAX_NAME, required=True)
        if description is not None:
            label.description = _text(description, "description", MAX_DESCRIPTION)
        if color is not None:
            label.color = _text(color, "color", MAX_COLOR)
        _saved(label)
        _record(actor, Operation.UPDATE, label)
    return label


def label_delete(*, actor: Actor, label_id: int) -> Label:
    """Delete a label and detach it from every artifact that carries it."""
    with transaction.atomic():
        label = label_get(actor=actor, label_id=label_id, action="delete")
        detached, _ = ArtifactLabel.objects.filter(label=label).delete()
        label.delete()
        _record(actor, Operation.DELETE, label, {"detached_from": detached})
    return label


# Labels on artifacts --------------------------------------------------------------


def _attachable(project: Project, label_id: int) -> Label:
    """A global label, or one of ``project``'s: another project's label is as
    absent as a missing one (C23)."""
    label = (
        Label.objects.filter(pk=label_id)
        .filter(Q(scope=Label.Scope.GLOBAL) | Q(scope=Label.Scope.PROJECT, project=project))
        .first()
    )
    if label is None:
        raise _missing(label_id)
    return label


def _record_link(
    actor: Actor, operation: Operation, repository: Repository, manifest: Manifest, label: Label
) -> None:
    record(
        actor=actor,
        operation=operation,
        resource_type=Resource.ARTIFACT_LABEL,
        resource=f"{repository.name}@{manifest.digest}",
        project=repository.project,
        detail={"label": label.name, "label_id": label.pk},
    )


def artifact_label_add(
    *, actor: Actor, repository: Repository, reference: str, label_id: int
) -> Label:
    access.require(actor, "artifact-label", "create", repository.project)
    manifest = artifact_get(repository=repository, reference=reference)
    label = _attachable(repository.project, label_id)
    try:
        with transaction.atomic():
            ArtifactLabel.objects.create(manifest=manifest, label=label)
            _record_link(actor, Operation.CREATE, repository, manifest, label)
    except IntegrityError:
        raise Conflict(f"label {label_id} is already added to the artifact") from None
    return label


def artifact_label_remove(
    *, actor: Actor, repository: Repository, reference: str, label_id: int
) -> None:
    access.require(actor, "artifact-label", "delete", repository.project)
    manifest = artifact_get(repository=repository, reference=reference)
    label = _attachable(repository.project, label_id)
    with transaction.atomic():
        removed, _ = ArtifactLabel.objects.filter(manifest=manifest, label=label).delete()
        if not removed:
            raise NotFound(message=f"label {label_id} is not added to the artifact")
        _record_link(actor, Operation.DELETE, repository, manifest, label)


def labelled(rows: QuerySet[Manifest], label_ids: Iterable[int]) -> QuerySet[Manifest]:
    """The artifacts among ``rows`` that carry every one of ``label_ids``
    (Harbor's ``labels=(id1 id2)``): one subquery per label."""
    for label_id in set(label_ids):
        rows = rows.filter(
            pk__in=ArtifactLabel.objects.filter(label_id=label_id).values("manifest_id")
        )
    return rows


def render(label: Label) -> dict[str, Any]:
    """Harbor's ``Label`` (a global label's ``project_id`` is 0, as in Harbor)."""
    return {
        "id": label.pk,
        "name": label.name,
        "description": label.description,
        "color": label.color,
        "scope": label.scope,
        "project_id": label.project_id or 0,
        "creation_time": ts(label.created_at),
        "update_time": ts(label.updated_at),
    }
