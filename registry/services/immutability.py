"""Tag immutability: a project's rules (Harbor's immutable tag rules) name tags
that may be created but never moved to another manifest or deleted — by anyone,
admins included (case C26). Checked where tags change: manifest PUT (by tag or
``?tag=``), the API's tag, artifact and repository deletes, /v2 deletes, copies.

Patterns are doublestar globs as in Harbor: ``*`` stays within one path
component, ``**`` crosses them, ``{a,b}`` and ``[a-z]`` work; they are compiled
and matched by ``kit.patterns`` (RE2: linear time, limits checked when a rule is
written). The repository pattern is matched against the repository's name within
its project (``library/app/web`` → ``app/web``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from accounts import access
from accounts.access import Actor
from accounts.errors import Conflict, Invalid, NotFound
from accounts.models import Project
from audit.events import Operation, Resource
from audit.services import record
from kit import patterns
from registry.errors import Code, RegistryError
from registry.models import ImmutableRule

MAX_RULES = 15  # per project, as Harbor
TAG_DECORATIONS = ("matches", "excludes")
REPO_DECORATIONS = ("repoMatches", "repoExcludes")
log = logging.getLogger("berth.registry")

Matcher = Callable[[str, str], bool]  # (repository name, tag) → immutable?


def _applies(rule: ImmutableRule, repo_in_project: str, tag: str) -> bool:
    try:
        repo_hit = patterns.glob(rule.repo_pattern).matches(repo_in_project)
        tag_hit = patterns.glob(rule.tag_pattern).matches(tag)
    except Invalid:
        # A rule stored before today's limits keeps what it might protect
        # immutable (fail closed) until an admin rewrites it.
        log.warning("immutable tag rule %s is over the pattern limits; it applies", rule.pk)
        return True
    if rule.repo_decoration == "repoExcludes":
        repo_hit = not repo_hit
    if rule.tag_decoration == "excludes":
        tag_hit = not tag_hit
    return repo_hit and tag_hit


def _matcher(rules: list[ImmutableRule]) -> Matcher:
    def immutable(repository_name: str, tag: str) -> bool:
        parts = access.split_repository(repository_name)
        within = parts[1] if parts else ""
        return any(_applies(rule, within, tag) for rule in rules)

    return immutable


def matcher_for(project: Project) -> Matcher:
    """One query; then answers for any repository and tag of the project."""
    return _matcher(list(ImmutableRule.objects.filter(project=project, disabled=False)))


def protected(repository_name: str, tags: Iterable[str]) -> list[str]:
    """The given tags of the repository that an enabled rule makes immutable."""
    tags = list(tags)
    if not tags:
        return []
    parts = access.split_repository(repository_name)
    if parts is None:
        return []
    rules = list(ImmutableRule.objects.filter(project__name=parts[0], disabled=False))
    if not rules:
        return []
    immutable = _matcher(rules)
    return sorted({t for t in tags if immutable(repository_name, t)})


def require_mutable(repository_name: str, tags: Iterable[str]) -> None:
    locked = protected(repository_name, tags)
    if locked:
        raise RegistryError(
            Code.TAG_IMMUTABLE,
            f"tag {locked[0]} in {repository_name} is immutable: it cannot be moved or deleted",
            detail={"tags": locked[:20]},
        )


# Rules, as Harbor's API shows and takes them.


def render(rule: ImmutableRule) -> dict[str, Any]:
    return {
        "id": rule.pk,
        "project_id": rule.project_id,
        "priority": rule.priority,
        "disabled": rule.disabled,
        "action": "immutable",
        "template": "immutable_template",
        "params": {},
        "tag_selectors": [
            {
                "kind": "doublestar",
                "decoration": rule.tag_decoration,
                "pattern": rule.tag_pattern,
                "extras": "",
            }
        ],
        "scope_selectors": {
            "repository": [
                {
                    "kind": "doublestar",
                    "decoration": rule.repo_decoration,
                    "pattern": rule.repo_pattern,
                    "extras": "",
                }
            ]
        },
    }


def _selector(raw: Any, where: str, decorations: tuple[str, ...]) -> tuple[str, str]:
    """One selector → (pattern, decoration); Berth keeps one per rule and scope."""
    if isinstance(raw, list):
        if len(raw) != 1:
            raise Invalid(f"{where}: exactly one selector is supported")
        raw = raw[0]
    if not isinstance(raw, dict):
        raise Invalid(f"{where}: a selector object is required")
    kind = raw.get("kind", "doublestar")
    if kind != "doublestar":
        raise Invalid(f"{where}: kind must be doublestar")
    decoration = raw.get("decoration", decorations[0])
    if decoration not in decorations:
        raise Invalid(f"{where}: decoration must be one of {', '.join(decorations)}")
    pattern = raw.get("pattern")
    if not isinstance(pattern, str) or not pattern.strip():
        raise Invalid(f"{where}: a pattern is required")
    try:
        patterns.glob(pattern)
    except Invalid as exc:
        raise Invalid(f"{where}: {exc}") from None
    return pattern, str(decoration)


def parse(data: Any, *, partial_of: ImmutableRule | None = None) -> dict[str, Any]:
    """Harbor's ImmutableRule body → model fields; anything malformed is a 400."""
    if not isinstance(data, dict):
        raise Invalid("a JSON object is required")
    if data.get("action", "immutable") != "immutable":
        raise Invalid("action must be immutable")
    fields: dict[str, Any] = {}
    if "tag_selectors" in data or partial_of is None:
        if "tag_selectors" not in data:
            raise Invalid("tag_selectors is required")
        fields["tag_pattern"], fields["tag_decoration"] = _selector(
            data["tag_selectors"], "tag_selectors", TAG_DECORATIONS
        )
    if "scope_selectors" in data:
        scopes = data["scope_selectors"]
        if not isinstance(scopes, dict) or set(scopes) - {"repository"}:
            raise Invalid("scope_selectors: only the repository scope is supported")
        if "repository" in scopes:
            fields["repo_pattern"], fields["repo_decoration"] = _selector(
                scopes["repository"], "scope_selectors.repository", REPO_DECORATIONS
            )
    for name, kind in (("disabled", bool), ("priority", int)):
        if name in data:
            value = data[name]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise Invalid(f"{name} must be a {kind.__name__}")
            if kind is int and not -(2**31) <= value < 2**31:
                raise Invalid(f"{name} is out of range")
            fields[name] = value
    return fields


def _duplicate(project: Project, fields: dict[str, Any], exclude: int | None) -> bool:
    same = ImmutableRule.objects.filter(
        project=project,
        tag_pattern=fields["tag_pattern"],
        tag_decoration=fields["tag_decoration"],
        repo_pattern=fields["repo_pattern"],
        repo_decoration=fields["repo_decoration"],
    )
    return same.exclude(pk=exclude).exists() if exclude else same.exists()


def _record(actor: Actor, project: Project, operation: Operation, rule: ImmutableRule) -> None:
    record(
        actor=actor,
        operation=operation,
        resource_type=Resource.IMMUTABLE_RULE,
        resource=f"{project.name}: {rule.repo_pattern} / {rule.tag_pattern}",
        project=project,
    )


def rule_list(*, actor: Actor, project: Project) -> QuerySet[ImmutableRule]:
    access.require(actor, "immutable-tag", "list", project)
    return project.immutable_rules.all()


def rule_create(*, actor: Actor, project: Project, data: Any) -> ImmutableRule:
    """Project admins and maintainers (and sysadmins): Harbor's matrix."""
    access.require(actor, "immutable-tag", "create", project)
    fields = parse(data)
    fields.setdefault("repo_pattern", "**")
    fields.setdefault("repo_decoration", "repoMatches")
    with transaction.atomic():
        # Lock the project row: two creates cannot both pass the count check.
        Project.objects.select_for_update().filter(pk=project.pk).first()
        if ImmutableRule.objects.filter(project=project).count() >= MAX_RULES:
            raise Invalid(f"a project holds at most {MAX_RULES} immutable tag rules")
        if _duplicate(project, fields, None):
            raise Conflict("an identical rule already exists")
        try:
            rule = ImmutableRule.objects.create(project=project, **fields)
        except IntegrityError:
            raise Conflict("the rule cannot be stored") from None
        _record(actor, project, Operation.CREATE, rule)
    return rule


def rule_get(*, project: Project, rule_id: int) -> ImmutableRule:
    rule = ImmutableRule.objects.filter(project=project, pk=rule_id).first()
    if rule is None:  # another project's rule is as absent as a missing one
        raise NotFound(f"immutable tag rule {rule_id}")
    return rule


def rule_update(*, actor: Actor, project: Project, rule_id: int, data: Any) -> ImmutableRule:
    access.require(actor, "immutable-tag", "update", project)
    with transaction.atomic():
        rule = rule_get(project=project, rule_id=rule_id)
        for name, value in parse(data, partial_of=rule).items():
            setattr(rule, name, value)
        current = {
            "tag_pattern": rule.tag_pattern,
            "tag_decoration": rule.tag_decoration,
            "repo_pattern": rule.repo_pattern,
            "repo_decoration": rule.repo_decoration,
        }
        if _duplicate(project, current, rule.pk):
            raise Conflict("an identical rule already exists")
        rule.save()
        _record(actor, project, Operation.UPDATE, rule)
    return rule


def rule_delete(*, actor: Actor, project: Project, rule_id: int) -> ImmutableRule:
    access.require(actor, "immutable-tag", "delete", project)
    with transaction.atomic():
        rule = rule_get(project=project, rule_id=rule_id)
        rule.delete()
        _record(actor, project, Operation.DELETE, rule)
    return rule
