"""Projects and registry content in the admin.

Projects are created, changed and deleted through ``accounts.services.projects``
(a project is deleted only when empty). Repositories, manifests, tags and blobs
are content written by the registry protocol: read-only here, on changelists
built for big tables (no full count, prefix or exact searches, payloads deferred).
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, OuterRef, Prefetch, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.defaultfilters import filesizeformat
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts import access
from accounts.adminsite import (
    SERVICE_ERRORS,
    AdminScope,
    LargeTableAdmin,
    ProjectScopedAdmin,
    ReadOnlyMixin,
    ServiceDeleteAdmin,
    ServiceForm,
    ServiceFormAdmin,
    SysadminOnlyAdmin,
    count_of,
    refusal,
    registry_host,
    site,
)
from accounts.models import Member, Project, Robot
from accounts.services.projects import project_create, project_delete, project_update
from kit.errors import Conflict, Invalid
from registry import details
from registry.livejobs import SystemJobLive
from registry.models import (
    Blob,
    ImmutableRule,
    Manifest,
    ManifestBlob,
    ManifestChild,
    ProjectQuota,
    ProjectStorage,
    QuotaUsage,
    Repository,
    RetentionExecution,
    RetentionPolicy,
    RetentionTask,
    ScheduledRun,
    SystemJob,
    Tag,
)
from registry.services import immutability, quotas, retention, systemjobs
from registry.services.artifacts import artifact_delete, repository_delete, tag_create, tag_delete

PAYLOAD_SHOWN = 64 * 1024

# projects ---------------------------------------------------------------------


class ProjectAddForm(ServiceForm):
    class Meta:
        model = Project
        fields = ("name", "public")

    def perform(self, data: dict[str, Any]) -> Project:
        return project_create(actor=self.actor, name=data["name"], public=data["public"])


class ProjectChangeForm(ServiceForm):
    class Meta:
        model = Project
        fields = ("public",)

    def perform(self, data: dict[str, Any]) -> Project:
        return project_update(
            actor=self.actor, project=self.instance, metadata=None, public=data["public"]
        )


PROJECT_FIELDS = (
    "name",
    "public",
    "owner_name",
    "metadata",
    "repositories",
    "members",
    "robots",
    "created_at",
    "updated_at",
)


class MineFilter(admin.SimpleListFilter):
    """Harbor's "My projects": those the user is a member of."""

    title = _("membership")
    parameter_name = "mine"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("1", _("My projects"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Project]) -> QuerySet[Project]:
        if self.value() != "1":
            return queryset
        # A subquery, not the ids: a member of 1,000 projects sends no 1,000 parameters.
        return queryset.filter(pk__in=access.member_projects(AdminScope.of(request).actor))


@admin.register(Project, site=site)
class ProjectAdmin(LargeTableAdmin, ServiceDeleteAdmin, ServiceFormAdmin, ProjectScopedAdmin):
    resource = "project"
    list_action = "read"  # Harbor lists the projects one may read: mine and public
    project_path = "pk"
    form = ProjectChangeForm
    list_display = (
        "name",
        "public",
        "owner_name",
        "repository_count",
        "member_count",
        "robot_count",
        "created_at",
    )
    list_select_related = ("owner",)
    list_filter = (MineFilter, "public")
    # Any part of the name.
    search_fields = ("name",)

    def project_of(self, obj: Project) -> Project:
        return obj

    def get_queryset(self, request: HttpRequest) -> QuerySet[Project]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                repository_count=count_of(Repository, "project"),
                member_count=count_of(Member, "project"),
                robot_count=count_of(Robot, "project"),
            )
        )

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):  # type: ignore[no-untyped-def]
        if obj is None:
            kwargs["form"] = ProjectAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("name", "public") if obj is None else PROJECT_FIELDS

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # Only `public` changes here (through the service).
        return () if obj is None else tuple(f for f in PROJECT_FIELDS if f != "public")

    @admin.display(description="owner", ordering="owner__username")
    def owner_name(self, obj: Project) -> str:
        return obj.owner.username if obj.owner else ""

    @admin.display(description="repositories", ordering="repository_count")
    def repository_count(self, obj: Any) -> int:
        return obj.repository_count

    @admin.display(description="members", ordering="member_count")
    def member_count(self, obj: Any) -> int:
        return obj.member_count

    @admin.display(description="robots", ordering="robot_count")
    def robot_count(self, obj: Any) -> int:
        return obj.robot_count

    @admin.display(description=_("repositories"))
    def repositories(self, obj: Project) -> str:
        return self._children("registry_repository", gettext("repositories of %s"), obj)

    @admin.display(description=_("members"))
    def members(self, obj: Project) -> str:
        return self._children("accounts_member", gettext("members of %s"), obj)

    @admin.display(description=_("robots"))
    def robots(self, obj: Project) -> str:
        return self._children("accounts_robot", gettext("robots of %s"), obj)

    def _children(self, changelist: str, label: str, obj: Project) -> str:
        url = reverse(f"admin:{changelist}_changelist")
        return format_html('<a href="{}?project__id__exact={}">{}</a>', url, obj.pk, label % obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Whoever may create projects through the API (the service decides again)."""
        scope = AdminScope.of(request)
        return scope.sysadmin or (
            settings.BERTH_PROJECT_CREATION == "everyone" and scope.may_use_admin()
        )

    def delete_model(self, request: HttpRequest, obj: Project) -> None:
        project_delete(actor=AdminScope.of(request).actor, project=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Project]) -> None:
        for project in queryset:
            self.delete_model(request, project)


# content ----------------------------------------------------------------------


def pull_commands(request: HttpRequest, manifest: Manifest) -> list[tuple[str, str]]:
    """(what, ``docker pull`` line) for each tag of the artifact, then its digest."""
    base = f"{registry_host(request)}/{manifest.repository.name}"
    lines = [(tag.name, f"docker pull {base}:{tag.name}") for tag in manifest.tags.all()]
    return [*lines, (manifest.digest, f"docker pull {base}@{manifest.digest}")]


class ContentAdmin(LargeTableAdmin, ServiceDeleteAdmin, ProjectScopedAdmin):
    """Content written by the registry protocol: seen by whoever may list it,
    never added or edited here, deleted through ``registry.services.artifacts``
    by whoever Harbor's matrix lets delete it."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        """What the confirmation page lists: the object itself. Its tags and
        artifacts go with it, as the service (which decides) deletes them."""
        return [str(obj) for obj in objs], {}, set(), []


@admin.register(Repository, site=site)
class RepositoryAdmin(ContentAdmin):
    resource = "repository"
    list_display = ("repository", "project", "tag_count", "manifest_count", "updated_at")
    list_select_related = ("project",)
    # Any part of the name: `app` finds `team-a/app`.
    search_fields = ("name",)
    show_full_result_count = False
    fields = ("name", "project", "description", "artifacts", "pull_count", "updated_at")
    readonly_fields = ("artifacts",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Repository]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                tag_count=count_of(Tag, "repository"),
                manifest_count=count_of(Manifest, "repository"),
            )
        )

    @admin.display(description=_("repository"), ordering="name")
    def repository(self, obj: Repository) -> str:
        return format_html('<a href="{}">{}</a>', artifacts_url(obj), obj.name)

    @admin.display(description=_("artifacts"))
    def artifacts(self, obj: Repository) -> str:
        return format_html('<a href="{}">{}</a>', artifacts_url(obj), _("Artifacts and tags"))

    @admin.display(description=_("tags"))
    def tag_count(self, obj: Any) -> int:
        return obj.tag_count

    @admin.display(description=_("artifacts"))
    def manifest_count(self, obj: Any) -> int:
        return obj.manifest_count

    def delete_model(self, request: HttpRequest, obj: Repository) -> None:
        repository_delete(actor=AdminScope.of(request).actor, repository=obj)


def artifacts_url(repository: Repository) -> str:
    return f"{reverse('admin:registry_manifest_changelist')}?repository__id__exact={repository.pk}"


def blob_bytes() -> Coalesce:
    """The bytes of the blobs (config and layers) a manifest lists, as a
    correlated sum evaluated for the rows of the page only."""
    rows = (
        ManifestBlob.objects.filter(manifest=OuterRef("pk"))
        .order_by()
        .values("manifest")
        .annotate(n=Sum("blob__size"))
        .values("n")
    )
    return Coalesce(Subquery(rows), 0)


def accessory_count() -> Coalesce:
    """How many artifacts of the repository refer to this one (its accessories:
    the indexed ``subject_digest``), for the rows of the page only."""
    rows = (
        Manifest.objects.filter(
            repository_id=OuterRef("repository_id"), subject_digest=OuterRef("digest")
        )
        .order_by()
        .values("repository_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(rows), 0)


class RepositoryFilter(admin.SimpleListFilter):
    """One repository's artifacts (the repository pages link here). Its only
    choice is the repository chosen, read by its key: listing every
    repository holding artifacts would read the whole manifest table."""

    title = _("repository")
    parameter_name = "repository__id__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        value = self.value()
        if not (value and value.isdigit()):
            return []
        repositories = AdminScope.of(request).restrict(
            Repository.objects.filter(pk=int(value)), "project", "repository", "list"
        )
        return [(str(r.pk), r.name) for r in repositories]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(repository_id=int(value))


@admin.register(Manifest, site=site)
class ManifestAdmin(ContentAdmin):
    """Artifacts (Harbor's word; a manifest and its tags). An artifact's page
    shows its tags (with their pull commands, a form to add one, a link to
    delete each), its blobs with their sizes, the build history of its image
    config, the platforms of an index, its referrers and the manifest
    (``registry.details``, ``templates/admin/registry/manifest/change_form.html``)."""

    resource = "artifact"
    project_path = "repository__project"
    list_display = (
        "digest",
        "tag_names",
        "repository",
        "media_type",
        "size_shown",
        "platform_count",
        "accessories",
        "created_at",
        "pulled_at",
    )
    list_select_related = ("repository",)
    list_filter = (RepositoryFilter,)
    search_fields = ("=digest", "repository__name", "=tags__name")
    # Newest first, on the primary key: a walk of its index, stopped at the page.
    ordering = ("-pk",)
    # Row links carry no filter state: resolving it for every row was a third
    # of the page's rendering; the artifact's page links back to its repository.
    preserve_filters = False
    fields = (
        "repository",
        "digest",
        "tag_names",
        "media_type",
        "artifact_type",
        "size",
        "subject_digest",
        "annotations_text",
        "created_at",
        "payload_text",
    )
    readonly_fields = ("tag_names", "annotations_text", "payload_text")
    change_form_template = "admin/registry/manifest/change_form.html"

    def project_of(self, obj: Manifest) -> Project:
        return obj.repository.project

    def get_queryset(self, request: HttpRequest) -> QuerySet[Manifest]:
        tags = Prefetch("tags", queryset=Tag.objects.order_by("name"))
        return (
            super()
            .get_queryset(request)
            .defer("payload")
            .select_related("repository__project")
            .prefetch_related(tags)
            .annotate(
                total_size=F("size") + blob_bytes(),
                children=count_of(ManifestChild, "parent"),
                referrers=accessory_count(),
            )
        )

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Manifest | None:
        """Once per request: the page's own context and Django's change view
        both ask for it."""
        key = (object_id, from_field)
        memo = getattr(request, "_berth_artifact", None)
        if memo is not None and memo[0] == key:
            return memo[1]
        manifest = super().get_object(request, object_id, from_field)
        request._berth_artifact = (key, manifest)  # type: ignore[attr-defined]
        return manifest

    def get_list_filter(self, request: HttpRequest) -> Any:
        # Offered only when the list is already one repository's.
        return self.list_filter if RepositoryFilter.parameter_name in request.GET else ()

    @admin.display(description=_("tags"))
    def tag_names(self, obj: Manifest) -> str:
        return ", ".join(tag.name for tag in obj.tags.all())

    @admin.display(description=_("size"), ordering="size")
    def size_shown(self, obj: Any) -> str:
        return format_html(
            '<span title="{}">{}</span>', obj.total_size, filesizeformat(obj.total_size)
        )

    @admin.display(description=_("platforms"))
    def platform_count(self, obj: Any) -> int | str:
        return obj.children or ""

    @admin.display(description=_("accessories"))
    def accessories(self, obj: Any) -> int | str:
        return obj.referrers or ""

    @admin.display(description=_("pulled"))
    def pulled_at(self, obj: Manifest) -> Any:
        return obj.repository.last_pulled_at

    @admin.display(description=_("annotations"))
    def annotations_text(self, obj: Manifest) -> str:
        # Escaped (ensure_ascii): a lone surrogate stored before Berth refused
        # them would fail the page as UTF-8.
        return format_html("<pre>{}</pre>", json.dumps(obj.annotations or {}, indent=2))

    @admin.display(description=_("manifest"))
    def payload_text(self, obj: Manifest) -> str:
        payload = bytes(obj.payload)
        try:
            text = json.dumps(json.loads(payload), indent=2)
        except ValueError:
            text = payload[:PAYLOAD_SHOWN].decode("utf-8", "replace")
        if len(text) > PAYLOAD_SHOWN:
            text = text[:PAYLOAD_SHOWN] + "\n…"
        return format_html("<pre>{}</pre>", text)

    def get_urls(self) -> list[URLPattern]:
        # Before the admin's own: its last pattern takes any path under the model.
        tags = path(
            "<path:object_id>/tags/",
            self.admin_site.admin_view(self.add_tag_view),
            name="registry_manifest_add_tag",
        )
        return [tags, *super().get_urls()]

    def add_tag_view(self, request: HttpRequest, object_id: str) -> HttpResponseBase:
        """Add a tag to the artifact: ``registry.services.artifacts.tag_create``,
        as the API's ``POST .../artifacts/{reference}/tags`` (the name checked,
        an existing tag refused, audited), for whoever may ``tag:create`` in its
        project."""
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        manifest = self.get_object(request, object_id)
        if manifest is None:
            raise Http404
        scope = AdminScope.of(request)
        if not scope.may_on("tag", "create", manifest.repository.project):
            raise PermissionDenied
        name = request.POST.get("name", "").strip()
        try:
            tag_create(
                actor=scope.actor,
                repository=manifest.repository,
                reference=manifest.digest,
                name=name,
            )
        except SERVICE_ERRORS as exc:
            messages.error(request, refusal(exc))
        else:
            messages.success(request, gettext("Tag %(name)s added.") % {"name": name})
        return redirect("admin:registry_manifest_change", manifest.pk)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        manifest = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if manifest is not None:
            context.update(artifact_context(request, manifest))
        return super().change_view(request, object_id, form_url, context)

    def delete_model(self, request: HttpRequest, obj: Manifest) -> None:
        artifact_delete(
            actor=AdminScope.of(request).actor, repository=obj.repository, reference=obj.digest
        )


def artifact_context(request: HttpRequest, manifest: Manifest) -> dict[str, Any]:
    """What the artifact's page shows beside its fields."""
    scope = AdminScope.of(request)
    project = manifest.repository.project
    immutable = immutability.matcher_for(project)
    may_delete = scope.may_on("tag", "delete", project)
    tag_rows = [
        {
            "name": tag.name,
            "immutable": immutable(manifest.repository.name, tag.name),
            "delete_url": reverse("admin:registry_tag_delete", args=[tag.pk]) if may_delete else "",
        }
        for tag in manifest.tags.all()
    ]
    layers = details.layers(manifest)
    return {
        "repository_url": artifacts_url(manifest.repository),
        "pull_commands": pull_commands(request, manifest),
        "artifact_tags": tag_rows,
        "may_add_tag": scope.may_on("tag", "create", project),
        "add_tag_url": reverse("admin:registry_manifest_add_tag", args=[manifest.pk]),
        "layers": layers,
        "layers_size": sum(layer.size for layer in layers) + manifest.size,
        "history": details.history(manifest),
        "platforms": [
            (
                platform,
                reverse("admin:registry_manifest_change", args=[platform.child_id])
                if platform.child_id
                else "",
            )
            for platform in details.platforms(manifest)
        ],
        "referrers": [
            (kind, row, reverse("admin:registry_manifest_change", args=[row.pk]))
            for kind, row in details.referrers(manifest)
        ],
    }


@admin.register(Tag, site=site)
class TagAdmin(ContentAdmin):
    resource = "tag"
    view_action = "list"  # Harbor's matrix has no tag:read
    project_path = "repository__project"
    list_display = ("name", "repository", "artifact", "updated_at")
    list_select_related = ("repository", "manifest")
    search_fields = ("=name", "repository__name")
    show_full_result_count = False
    fields = ("name", "repository", "artifact", "updated_at")
    readonly_fields = ("artifact",)

    def project_of(self, obj: Tag) -> Project:
        return obj.repository.project

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tag]:
        return super().get_queryset(request).defer("manifest__payload")

    @admin.display(description=_("artifact"))
    def artifact(self, obj: Tag) -> str:
        url = reverse("admin:registry_manifest_change", args=[obj.manifest_id])
        return format_html('<a href="{}">{}</a>', url, obj.manifest.digest)

    def delete_model(self, request: HttpRequest, obj: Tag) -> None:
        tag_delete(
            actor=AdminScope.of(request).actor,
            repository=obj.repository,
            reference=obj.manifest.digest,
            name=obj.name,
        )


@admin.register(Blob, site=site)
class BlobAdmin(ReadOnlyMixin, SysadminOnlyAdmin):
    """Blobs are shared by every project that links them: system administrators only."""

    list_display = ("digest", "size", "created_at")
    search_fields = ("=digest",)
    show_full_result_count = False


# tag immutability rules -------------------------------------------------------


def _rule_body(data: dict[str, Any]) -> dict[str, Any]:
    """The form's fields as Harbor's rule body: one validation path (the service)."""
    return {
        "disabled": data["disabled"],
        "priority": data["priority"],
        "tag_selectors": [{"decoration": data["tag_decoration"], "pattern": data["tag_pattern"]}],
        "scope_selectors": {
            "repository": [{"decoration": data["repo_decoration"], "pattern": data["repo_pattern"]}]
        },
    }


class ImmutableRuleChangeForm(ServiceForm):
    tag_decoration = forms.ChoiceField(
        choices=[(d, d) for d in immutability.TAG_DECORATIONS], label="tags"
    )
    repo_decoration = forms.ChoiceField(
        choices=[(d, d) for d in immutability.REPO_DECORATIONS], label="repositories"
    )

    class Meta:
        model = ImmutableRule
        fields = (
            "repo_decoration",
            "repo_pattern",
            "tag_decoration",
            "tag_pattern",
            "priority",
            "disabled",
        )
        help_texts = {
            "repo_pattern": "Doublestar glob on the name inside the project: app, app/*, **.",
            "tag_pattern": "Doublestar glob on tag names: v*, {1,2}.*, **.",
        }

    def perform(self, data: dict[str, Any]) -> ImmutableRule:
        return immutability.rule_update(
            actor=self.actor,
            project=self.instance.project,
            rule_id=self.instance.pk,
            data=_rule_body(data),
        )


class ImmutableRuleAddForm(ImmutableRuleChangeForm):
    project = forms.ModelChoiceField(queryset=Project.objects.none())

    class Meta(ImmutableRuleChangeForm.Meta):
        pass

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["project"].queryset = self.scope.projects("immutable-tag", "create")  # type: ignore[attr-defined]

    def perform(self, data: dict[str, Any]) -> ImmutableRule:
        return immutability.rule_create(
            actor=self.actor, project=data["project"], data=_rule_body(data)
        )


@admin.register(ImmutableRule, site=site)
class ImmutableRuleAdmin(ServiceFormAdmin, ProjectScopedAdmin):
    """Project admins and maintainers manage their projects' rules; changes go
    through registry.services.immutability (validation, audit)."""

    resource = "immutable-tag"
    form = ImmutableRuleChangeForm
    list_display = ("project", "repositories", "tags", "priority", "disabled", "created_at")
    list_select_related = ("project",)
    list_filter = ("disabled", ("project", admin.RelatedOnlyFieldListFilter))
    ordering = ("project__name", "priority", "id")

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request, "list", obj)  # Harbor's matrix has no "read" here

    @admin.display(description="repositories")
    def repositories(self, obj: ImmutableRule) -> str:
        return f"{obj.repo_decoration} {obj.repo_pattern}"

    @admin.display(description="tags")
    def tags(self, obj: ImmutableRule) -> str:
        return f"{obj.tag_decoration} {obj.tag_pattern}"

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):  # type: ignore[no-untyped-def]
        if obj is None:
            kwargs["form"] = ImmutableRuleAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fields = ImmutableRuleChangeForm.Meta.fields
        return fields if obj is not None else ("project", *fields)

    def delete_model(self, request: HttpRequest, obj: ImmutableRule) -> None:
        immutability.rule_delete(
            actor=AdminScope.of(request).actor, project=obj.project, rule_id=obj.pk
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ImmutableRule]) -> None:
        for rule in queryset.select_related("project"):
            self.delete_model(request, rule)


@admin.register(ScheduledRun, site=site)
class ScheduledRunAdmin(ReadOnlyMixin, SysadminOnlyAdmin):
    """Which task ran each period of a scheduled job, and whether it finished."""

    list_display = ("name", "period", "task_id", "claimed_at", "finished_at")
    list_filter = ("name",)
    ordering = ("-claimed_at",)
    show_full_result_count = False


# quotas -----------------------------------------------------------------------


class QuotaChangeForm(ServiceForm):
    storage_limit = forms.IntegerField(
        label=_("storage limit (bytes)"),
        min_value=-1,
        help_text=_("-1: unlimited. It cannot be set below the project's current usage."),
    )

    class Meta:
        model = ProjectStorage
        fields = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["storage_limit"].initial = quotas.hard_limits(self.instance)["storage"]

    def perform(self, data: dict[str, Any]) -> ProjectStorage:
        quotas.quota_update(
            actor=self.actor, quota_id=self.instance.pk, hard={"storage": data["storage_limit"]}
        )
        return self.instance


def _usage_bar(used: int, limit: int) -> str:
    if limit == quotas.UNLIMITED:
        return format_html("{} / {}", quotas.display_size(used), gettext("unlimited"))
    share = min(100, round(100 * used / limit)) if limit else 100
    return format_html(
        '<progress max="100" value="{}" title="{}%"></progress> {} / {}',
        share,
        share,
        quotas.display_size(used),
        quotas.display_size(limit),
    )


@admin.register(ProjectStorage, site=site)
class ProjectStorageAdmin(ServiceFormAdmin, ProjectScopedAdmin):
    """Each project's storage usage against its limit; system administrators
    change limits (registry.services.quotas: checks, audit)."""

    resource = "quota"
    list_action = "read"
    project_path = "pk"
    form = QuotaChangeForm
    list_display = ("name", "usage", "limit", "used_bytes")
    search_fields = ("name",)
    ordering = ("name",)
    readonly_fields = ("name", "usage")
    fields = ("name", "usage", "storage_limit")

    def project_of(self, obj: ProjectStorage) -> Project:
        return obj

    def get_queryset(self, request: HttpRequest) -> QuerySet[ProjectStorage]:
        used = (
            QuotaUsage.objects.filter(project=OuterRef("pk"))
            .values("project")
            .annotate(total=Sum("bytes"))
            .values("total")
        )
        limit = ProjectQuota.objects.filter(project=OuterRef("pk")).values("storage_limit")
        return (
            super()
            .get_queryset(request)
            .annotate(
                used=Coalesce(Subquery(used), 0),
                storage_limit=Coalesce(Subquery(limit), quotas.UNLIMITED),
            )
        )

    @admin.display(description=_("usage"))
    def usage(self, obj: Any) -> str:
        return _usage_bar(obj.used, obj.storage_limit)

    @admin.display(description=_("limit"), ordering="storage_limit")
    def limit(self, obj: Any) -> str:
        if obj.storage_limit == quotas.UNLIMITED:
            return gettext("unlimited")
        return quotas.display_size(obj.storage_limit)

    @admin.display(description=_("bytes used"), ordering="used")
    def used_bytes(self, obj: Any) -> int:
        return int(obj.used)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return AdminScope.of(request).sysadmin


# tag retention ----------------------------------------------------------------


def _pretty(value: Any) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False))


@admin.register(RetentionPolicy, site=site)
class RetentionPolicyAdmin(ReadOnlyMixin, ProjectScopedAdmin):
    """Projects' retention policies (written through Harbor's API, or the
    portal); from here, runs: dry (what would go) or real."""

    resource = "tag-retention"
    list_display = ("project", "rule_count", "cron", "updated_at")
    list_select_related = ("project",)
    ordering = ("project__name",)
    fields = ("project", "algorithm", "cron", "rules_shown", "recent_runs")
    readonly_fields = fields
    actions = ("dry_run", "run_now")

    @admin.display(description=_("rules"))
    def rule_count(self, obj: RetentionPolicy) -> int:
        return len(obj.rules)

    @admin.display(description=_("rules"))
    def rules_shown(self, obj: RetentionPolicy) -> str:
        return _pretty(obj.rules)

    @admin.display(description=_("recent runs"))
    def recent_runs(self, obj: RetentionPolicy) -> str:
        url = reverse("admin:registry_retentionexecution_changelist")
        return format_html(
            '<a href="{}?policy__id__exact={}">{}</a>', url, obj.pk, gettext("runs of this policy")
        )

    def _start(self, request: HttpRequest, queryset: QuerySet[RetentionPolicy], dry: bool) -> None:
        actor = AdminScope.of(request).actor
        for policy in queryset.select_related("project"):
            try:
                retention.execution_start(actor=actor, policy=policy, dry_run=dry)
            except SERVICE_ERRORS as exc:
                self.message_user(request, f"{policy.project.name}: {refusal(exc)}", "error")
            else:
                self.message_user(request, gettext("%s: run started") % policy.project.name)

    @admin.action(description=_("Dry run: list what would be deleted"))
    def dry_run(self, request: HttpRequest, queryset: QuerySet[RetentionPolicy]) -> None:
        self._start(request, queryset, dry=True)

    @admin.action(description=_("Run now: delete what the rules do not retain"))
    def run_now(self, request: HttpRequest, queryset: QuerySet[RetentionPolicy]) -> None:
        self._start(request, queryset, dry=False)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # ReadOnlyMixin drops actions with the delete permission: keep ours.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class RetentionTaskInline(admin.TabularInline):
    model = RetentionTask
    fields = ("repository", "status", "total", "retained", "deleted_shown", "end_time")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    @admin.display(description=_("deleted (or, in a dry run, would be)"))
    def deleted_shown(self, obj: RetentionTask) -> str:
        if not obj.deleted:
            return ""
        return format_html(
            "<br>".join(["{}"] * len(obj.deleted)),
            *[
                f"{d['digest'][:19]} {','.join(d['tags']) or '<untagged>'}"
                + (f" (+{len(d['accessories'])} accessories)" if d.get("accessories") else "")
                for d in obj.deleted
            ],
        )

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return True  # whoever may open the run (its admin decides) sees its tasks

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RetentionExecution, site=site)
class RetentionExecutionAdmin(ReadOnlyMixin, ProjectScopedAdmin):
    """Retention runs and, per repository, what they deleted or would delete."""

    resource = "tag-retention"
    project_path = "policy__project"
    list_display = ("pk", "project_name", "status", "dry_run", "trigger", "start_time", "end_time")
    list_select_related = ("policy__project",)
    list_filter = ("status", "dry_run", "trigger")
    ordering = ("-id",)
    show_full_result_count = False
    fields = (
        "policy",
        "status",
        "dry_run",
        "trigger",
        "requested_by",
        "start_time",
        "end_time",
        "error",
    )
    readonly_fields = fields
    inlines = (RetentionTaskInline,)

    def project_of(self, obj: RetentionExecution) -> Project:
        return obj.policy.project

    @admin.display(description=_("project"), ordering="policy__project__name")
    def project_name(self, obj: RetentionExecution) -> str:
        return obj.policy.project.name


# garbage collection and the audit-log purge -------------------------------------


@admin.register(SystemJob, site=site)
class SystemJobAdmin(SystemJobLive, ReadOnlyMixin, SysadminOnlyAdmin):
    """Garbage collection and audit-log purge runs: history with freed bytes and
    logs; run, dry-run and stop buttons (registry/services/systemjobs.py);
    live status while a run runs (registry/livejobs.py)."""

    change_list_template = "admin/registry/systemjob/change_list.html"
    change_form_template = "admin/registry/systemjob/change_form.html"
    list_display = (
        "id",
        "kind",
        "status",
        "trigger",
        "dry_run",
        "freed",
        "deleted_blobs",
        "deleted_manifests",
        "requested_by",
        "created_at",
        "finished_at",
    )
    list_filter = ("kind", "status", "dry_run")
    ordering = ("-created_at", "-id")
    show_full_result_count = False
    fields = (
        "kind",
        "status",
        "trigger",
        "dry_run",
        "parameters",
        "freed",
        "deleted_blobs",
        "deleted_manifests",
        "deleted_links",
        "deleted_uploads",
        "deleted_events",
        "requested_by",
        "created_at",
        "started_at",
        "finished_at",
        "log_text",
    )
    readonly_fields = fields

    @admin.display(description=_("freed"), ordering="freed_bytes")
    def freed(self, obj: SystemJob) -> str:
        return filesizeformat(obj.freed_bytes) + (
            f" ({obj.freed_bytes} B)" if obj.freed_bytes else ""
        )

    @admin.display(description=_("log"))
    def log_text(self, obj: SystemJob) -> str:
        return format_html("<pre>{}</pre>", obj.log)

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("run/", wrap(self.run_view), name="registry_systemjob_run"),
            path("<int:job_id>/stop/", wrap(self.stop_view), name="registry_systemjob_stop"),
            *super().get_urls(),
        ]

    def run_view(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_permission(request):
            raise PermissionDenied
        kind = request.POST.get("kind", SystemJob.Kind.GC)
        if kind == SystemJob.Kind.GC:
            parameters: dict[str, Any] = {
                "delete_untagged": request.POST.get("delete_untagged") == "on",
                "workers": request.POST.get("workers") or "1",
                "dry_run": "dry_run" in request.POST,
            }
        else:
            parameters = {
                "audit_retention_hour": request.POST.get("audit_retention_hour") or "168",
                "include_event_types": request.POST.get("include_event_types", ""),
                "dry_run": "dry_run" in request.POST,
            }
        try:
            job = systemjobs.job_start(
                actor=AdminScope.of(request).actor,
                kind=kind if kind in SystemJob.Kind.values else SystemJob.Kind.GC,
                parameters=parameters,
            )
        except (Invalid, Conflict) as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, gettext("Started run %(id)s.") % {"id": job.pk})
        return redirect("admin:registry_systemjob_changelist")

    def stop_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_permission(request):
            raise PermissionDenied
        job = SystemJob.objects.filter(pk=job_id).first()
        if job is None:
            raise Http404
        systemjobs.job_stop(actor=AdminScope.of(request).actor, kind=job.kind, job_id=job.pk)
        messages.success(request, gettext("Asked run %(id)s to stop.") % {"id": job.pk})
        return redirect("admin:registry_systemjob_change", job.pk)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = {**(extra_context or {}), "worker_choices": range(1, 11)}
        return super().changelist_view(request, context)
