"""Tag retention as Harbor's: a project's policy of up to 15 ``retain`` rules,
run by hand or on a cron, dry or for real, with its runs' state in Berth's
tables (``RetentionPolicy``, ``RetentionExecution``, ``RetentionTask``).

How a run decides (Harbor's ``or`` algorithm), per repository of the project:

- the candidates are the repository's artifacts (manifests no index lists and
  no ``subject`` names: children go with their index, referrers with their
  subject), each with its tags, labels, push time and pull time;
- a rule applies to the repository when its scope selector matches the
  repository's name within the project; it selects the candidates its tag
  selectors match (an artifact is selected when one of its tags is; an
  untagged one only when the selector's ``extras`` say ``{"untagged":true}``)
  and its label selectors accept, and its template retains some of them;
- an artifact no applying rule retains is deleted, unless one of its tags is
  immutable (never removed); a repository no rule applies to is left alone.

Patterns are doublestar globs or (Berth's addition, harbor#12877) RE2 regular
expressions, compiled by ``kit.patterns`` when the policy is written: a
pattern that could backtrack cannot exist there. Deletes go through
``registry.services.manifests.manifest_delete``, as a user's delete: audited,
with their durable event, releasing quota; garbage collection frees the bytes.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max, QuerySet
from django.utils import timezone

from accounts import access
from accounts.access import Actor
from accounts.errors import Conflict, Invalid, NotFound, Unauthenticated
from accounts.models import Project
from audit.events import Operation, Resource
from audit.models import AuditEvent
from audit.services import record
from kit import cron, patterns
from registry.errors import RegistryError
from registry.models import (
    Manifest,
    Repository,
    RetentionExecution,
    RetentionPolicy,
    RetentionTask,
)
from registry.services import immutability
from registry.services.manifests import manifest_delete

log = logging.getLogger("berth.registry")

MAX_RULES = 15  # as Harbor
MAX_SELECTORS = 8  # of each kind per rule
MAX_PARAM = 100_000  # counts and days a template takes
MAX_EXTRAS = 1024  # characters of a selector's extras (Harbor's: {"untagged":true})
TEMPLATES: dict[str, tuple[str, str]] = {
    # template: (its parameter's unit, Harbor's display text)
    "latestPushedK": ("COUNT", "the most recently pushed # artifacts"),
    "latestPulledN": ("COUNT", "the most recently pulled # artifacts"),
    "nDaysSinceLastPush": ("DAYS", "pushed within the last # days"),
    "nDaysSinceLastPull": ("DAYS", "pulled within the last # days"),
    "always": ("", "always"),
    "nothing": ("", "none"),
}
TAG_KINDS = ("doublestar", "regex")
TAG_DECORATIONS = ("matches", "excludes")
LABEL_DECORATIONS = ("withLabels", "withoutLabels")
REPO_DECORATIONS = ("repoMatches", "repoExcludes")
Status = RetentionExecution.Status
ACTIVE = (Status.PENDING, Status.RUNNING)
RESOURCE = "tag-retention"


# --- the policy, checked ------------------------------------------------------------


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{where} must be a string")
    return value


def _pattern(kind: str, pattern: str, where: str) -> None:
    try:
        patterns.compile_pattern(kind, pattern)
    except Invalid as exc:
        raise Invalid(f"{where}: {exc}") from None


def _selector(raw: Any, where: str, kinds: tuple[str, ...], decorations: tuple[str, ...]) -> dict:
    if not isinstance(raw, dict):
        raise Invalid(f"{where} must be a selector object")
    kind = _text(raw.get("kind") or kinds[0], f"{where}.kind")
    if kind not in kinds:
        raise Invalid(f"{where}.kind must be one of {', '.join(kinds)}")
    decoration = _text(raw.get("decoration") or decorations[0], f"{where}.decoration")
    if decoration not in decorations:
        raise Invalid(f"{where}.decoration must be one of {', '.join(decorations)}")
    pattern = _text(raw.get("pattern", ""), f"{where}.pattern")
    if kind == "label":
        names = [n.strip() for n in pattern.split(",") if n.strip()]
        if not names:
            raise Invalid(f"{where}.pattern must name labels, comma separated")
        pattern = ",".join(names)
    else:
        if not pattern:
            raise Invalid(f"{where}.pattern is required")
        _pattern(kind, pattern, f"{where}.pattern")
    extras = raw.get("extras") or ""
    _extras(_text(extras, f"{where}.extras"), where)
    return {"kind": kind, "decoration": decoration, "pattern": pattern, "extras": extras}


def _extras(extras: str, where: str) -> dict[str, Any]:
    """Harbor's ``extras``: a JSON object in a string (``{"untagged":true}``)."""
    if not extras:
        return {}
    if len(extras) > MAX_EXTRAS:
        raise Invalid(f"{where}.extras is longer than {MAX_EXTRAS} characters")
    try:
        value = json.loads(extras)
    except (ValueError, RecursionError):
        raise Invalid(f"{where}.extras must be a JSON object in a string") from None
    if not isinstance(value, dict):
        raise Invalid(f"{where}.extras must be a JSON object in a string")
    if "untagged" in value and not isinstance(value["untagged"], bool):
        raise Invalid(f"{where}.extras: untagged must be true or false")
    return value


def _params(template: str, raw: Any, where: str) -> dict[str, int]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise Invalid(f"{where}.params must be an object")
    unit = TEMPLATES[template][0]
    if not unit:
        return {}
    value = raw.get(template)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"{where}.params.{template} must be an integer")
    if not 0 <= value <= MAX_PARAM:
        raise Invalid(f"{where}.params.{template} must be between 0 and {MAX_PARAM}")
    return {template: value}


def _rule(raw: Any, n: int) -> dict[str, Any]:
    where = f"rules[{n}]"
    if not isinstance(raw, dict):
        raise Invalid(f"{where} must be an object")
    action = raw.get("action") or "retain"
    if action != "retain":
        raise Invalid(f"{where}.action must be retain")
    template = raw.get("template")
    if not isinstance(template, str) or template not in TEMPLATES:
        shown = str(template)[:64]
        raise Invalid(f"{where}.template {shown!r} is unknown: one of {', '.join(TEMPLATES)}")
    disabled = raw.get("disabled", False)
    if not isinstance(disabled, bool):
        raise Invalid(f"{where}.disabled must be true or false")
    priority = raw.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise Invalid(f"{where}.priority must be an integer")
    tags = raw.get("tag_selectors") or []
    if not isinstance(tags, list) or not tags or len(tags) > MAX_SELECTORS:
        raise Invalid(f"{where}.tag_selectors must list 1 to {MAX_SELECTORS} selectors")
    selectors = []
    for i, sel in enumerate(tags):
        kind = sel.get("kind") if isinstance(sel, dict) else None
        if kind == "label":
            selectors.append(
                _selector(sel, f"{where}.tag_selectors[{i}]", ("label",), LABEL_DECORATIONS)
            )
        else:
            selectors.append(
                _selector(sel, f"{where}.tag_selectors[{i}]", TAG_KINDS, TAG_DECORATIONS)
            )
    if not any(s["kind"] != "label" for s in selectors):
        raise Invalid(f"{where}.tag_selectors needs a tag selector (doublestar or regex)")
    scopes = raw.get("scope_selectors") or {}
    if not isinstance(scopes, dict) or set(scopes) - {"repository"}:
        raise Invalid(f"{where}.scope_selectors must be an object with repository only")
    repos = scopes.get("repository") or [{"kind": "doublestar", "pattern": "**"}]
    if not isinstance(repos, list) or len(repos) > MAX_SELECTORS:
        raise Invalid(f"{where}.scope_selectors.repository must list selectors")
    return {
        "id": n + 1,
        "priority": priority,
        "disabled": disabled,
        "action": "retain",
        "template": template,
        "params": _params(template, raw.get("params"), where),
        "tag_selectors": selectors,
        "scope_selectors": {
            "repository": [
                _selector(
                    sel,
                    f"{where}.scope_selectors.repository[{i}]",
                    TAG_KINDS,
                    REPO_DECORATIONS,
                )
                for i, sel in enumerate(repos)
            ]
        },
    }


@dataclass(frozen=True)
class Checked:
    project_id: int
    algorithm: str
    rules: list[dict[str, Any]]
    cron: str


def check_policy(raw: Any) -> Checked:
    """Harbor's RetentionPolicy, checked: every refusal a clear 400."""
    if not isinstance(raw, dict):
        raise Invalid("the policy must be a JSON object")
    algorithm = raw.get("algorithm") or "or"
    if algorithm != "or":
        raise Invalid("algorithm must be or")
    scope = raw.get("scope")
    if not isinstance(scope, dict) or scope.get("level", "project") != "project":
        raise Invalid("scope must be {level: project, ref: <project id>}")
    ref = scope.get("ref")
    if isinstance(ref, bool) or not isinstance(ref, int) or ref <= 0:
        raise Invalid("scope.ref must be a project id")
    rules = raw.get("rules")
    if rules is None:
        rules = []
    if not isinstance(rules, list):
        raise Invalid("rules must be a list")
    if len(rules) > MAX_RULES:
        raise Invalid(f"a policy holds at most {MAX_RULES} rules, {len(rules)} given")
    trigger = raw.get("trigger") or {}
    if not isinstance(trigger, dict):
        raise Invalid("trigger must be an object")
    kind = trigger.get("kind") or "Schedule"
    if kind != "Schedule":
        raise Invalid("trigger.kind must be Schedule")
    settings = trigger.get("settings") or {}
    if not isinstance(settings, dict):
        raise Invalid("trigger.settings must be an object")
    expression = _text(settings.get("cron") or "", "trigger.settings.cron").strip()
    if expression:
        cron.parse(expression)
    return Checked(ref, algorithm, [_rule(r, n) for n, r in enumerate(rules)], expression)


def render(policy: RetentionPolicy) -> dict[str, Any]:
    """Harbor's RetentionPolicy."""
    return {
        "id": policy.pk,
        "algorithm": policy.algorithm,
        "rules": policy.rules,
        "trigger": {
            "kind": "Schedule",
            "settings": {"cron": policy.cron},
            "references": {},
        },
        "scope": {"level": "project", "ref": policy.project_id},
    }


def metadata() -> dict[str, Any]:
    """Harbor's RetentionMetadata (``/retentions/metadatas``)."""
    return {
        "templates": [
            {
                "rule_template": name,
                "display_text": text,
                "action": "retain",
                "params": [{"type": "int", "unit": unit, "required": True}] if unit else [],
            }
            for name, (unit, text) in TEMPLATES.items()
        ],
        "scope_selectors": [
            {"display_text": "Repositories", "kind": kind, "decorations": list(REPO_DECORATIONS)}
            for kind in TAG_KINDS
        ],
        "tag_selectors": [
            {"display_text": "Tags", "kind": kind, "decorations": list(TAG_DECORATIONS)}
            for kind in TAG_KINDS
        ]
        + [{"display_text": "Labels", "kind": "label", "decorations": list(LABEL_DECORATIONS)}],
    }


# --- the policy, stored --------------------------------------------------------------


def _project_for(actor: Actor, project_id: int, action: str) -> Project:
    if not actor.authenticated:
        raise Unauthenticated()
    project = access.visible_projects(actor).filter(pk=project_id).first()
    if project is None:
        raise NotFound(f"project {project_id}")
    access.require(actor, RESOURCE, action, project)
    return project


def policy_get(*, actor: Actor, policy_id: int, action: str = "read") -> RetentionPolicy:
    """The policy if the actor may ``action`` it; NotFound for whoever may not
    see its project."""
    policy = RetentionPolicy.objects.select_related("project").filter(pk=policy_id).first()
    if policy is None:
        raise NotFound(f"retention {policy_id}")
    _project_for(actor, policy.project_id, action)
    return policy


def _audit(actor: Actor, operation: Operation, policy: RetentionPolicy) -> None:
    record(
        actor=actor,
        operation=operation,
        resource_type=Resource.RETENTION,
        resource=f"{policy.project.name}/retention/{policy.pk}",
        project=policy.project,
        detail={"rules": len(policy.rules), "cron": policy.cron},
    )


def _set_retention_id(project: Project, value: int | None) -> None:
    meta = dict(project.metadata or {})
    if value is None:
        meta.pop("retention_id", None)
    else:
        meta["retention_id"] = str(value)
    Project.objects.filter(pk=project.pk).update(metadata=meta)
    project.metadata = meta


def policy_create(*, actor: Actor, raw: Any) -> RetentionPolicy:
    """A project's policy (one per project, as Harbor: its id goes into the
    project's ``retention_id`` metadata)."""
    if not actor.authenticated:
        raise Unauthenticated()
    checked = check_policy(raw)
    project = _project_for(actor, checked.project_id, "create")
    try:
        with transaction.atomic():
            policy = RetentionPolicy.objects.create(
                project=project, algorithm=checked.algorithm, rules=checked.rules, cron=checked.cron
            )
            _set_retention_id(project, policy.pk)
            _audit(actor, Operation.CREATE, policy)
    except IntegrityError:
        existing = RetentionPolicy.objects.filter(project=project).values_list("pk", flat=True)
        raise Invalid(
            f"project {project.name} already has retention policy {existing.first()}: "
            "update it (PUT /retentions/{id})"
        ) from None
    return policy


def policy_update(*, actor: Actor, policy_id: int, raw: Any) -> RetentionPolicy:
    policy = policy_get(actor=actor, policy_id=policy_id, action="update")
    checked = check_policy(raw)
    if checked.project_id != policy.project_id:
        raise Invalid("scope.ref cannot change: a policy belongs to its project")
    with transaction.atomic():
        policy.algorithm = checked.algorithm
        policy.rules = checked.rules
        policy.cron = checked.cron
        policy.save(update_fields=["algorithm", "rules", "cron", "updated_at"])
        _audit(actor, Operation.UPDATE, policy)
    return policy


def policy_delete(*, actor: Actor, policy_id: int) -> None:
    policy = policy_get(actor=actor, policy_id=policy_id, action="delete")
    with transaction.atomic():
        _audit(actor, Operation.DELETE, policy)
        _set_retention_id(policy.project, None)
        policy.delete()


# --- executions ------------------------------------------------------------------------


def execution_start(
    *,
    actor: Actor | None,
    policy: RetentionPolicy,
    dry_run: bool,
    trigger: str = "MANUAL",
    dispatch: Callable[[int], None] | None = None,
) -> RetentionExecution:
    """A new run, Pending, sent to a worker once committed (``dispatch``, the
    Celery task by default). Conflict while a run of the policy is active."""
    if actor is not None:
        _project_for(actor, policy.project_id, "operate")
    try:
        with transaction.atomic():
            execution = RetentionExecution.objects.create(
                policy=policy,
                trigger=trigger,
                dry_run=dry_run,
                requested_by=actor.name if actor is not None else "",
            )
            send = dispatch or _dispatch
            transaction.on_commit(lambda: send(execution.pk))
    except IntegrityError:
        raise Conflict("a run of this retention policy is already in progress") from None
    return execution


def _dispatch(execution_id: int) -> None:
    from registry.tasks import run_retention

    run_retention.delay(execution_id)


def executions_of(policy: RetentionPolicy) -> QuerySet[RetentionExecution]:
    return RetentionExecution.objects.filter(policy=policy).order_by("-id")


def execution_get(policy: RetentionPolicy, execution_id: int) -> RetentionExecution:
    execution = RetentionExecution.objects.filter(policy=policy, pk=execution_id).first()
    if execution is None:
        raise NotFound(f"execution {execution_id}")
    return execution


def execution_stop(*, actor: Actor, policy: RetentionPolicy, execution_id: int) -> None:
    """Harbor's ``PATCH {"action":"stop"}``: a Pending run stops at once, a
    Running one before its next repository or deletion."""
    _project_for(actor, policy.project_id, "operate")
    execution = execution_get(policy, execution_id)
    with transaction.atomic():
        RetentionExecution.objects.filter(pk=execution.pk, status=Status.PENDING).update(
            status=Status.STOPPED, stop_requested=True, end_time=timezone.now()
        )
        RetentionExecution.objects.filter(pk=execution.pk, status=Status.RUNNING).update(
            stop_requested=True
        )


def task_get(execution: RetentionExecution, task_id: int) -> RetentionTask:
    task = RetentionTask.objects.filter(execution=execution, pk=task_id).first()
    if task is None:
        raise NotFound(f"task {task_id}")
    return task


# --- evaluation -----------------------------------------------------------------------------


@dataclass
class Candidate:
    digest: str
    tags: list[str]
    labels: set[str]
    pushed: datetime.datetime
    pulled: datetime.datetime | None
    immutable: bool = False
    kept_by: list[int] = field(default_factory=list)


def _selector_matches(sel: dict[str, Any], text: str) -> bool:
    hit = patterns.compile_pattern(sel["kind"], sel["pattern"]).matches(text)
    return not hit if sel["decoration"] in ("excludes", "repoExcludes") else hit


def _applies(rule: dict[str, Any], repo_in_project: str) -> bool:
    if rule.get("disabled"):
        return False
    selectors = rule["scope_selectors"]["repository"]
    return all(_selector_matches(sel, repo_in_project) for sel in selectors)


def _selected(rule: dict[str, Any], c: Candidate) -> bool:
    tag_sels = [s for s in rule["tag_selectors"] if s["kind"] != "label"]
    label_sels = [s for s in rule["tag_selectors"] if s["kind"] == "label"]
    for sel in label_sels:
        wanted = set(sel["pattern"].split(","))
        if sel["decoration"] == "withLabels" and not wanted <= c.labels:
            return False
        if sel["decoration"] == "withoutLabels" and wanted & c.labels:
            return False
    for sel in tag_sels:
        if not c.tags:
            if not _extras(sel.get("extras", ""), "selector").get("untagged", False):
                return False
        elif not any(_selector_matches(sel, tag) for tag in c.tags):
            return False
    return True


def _oldest() -> datetime.datetime:
    return datetime.datetime.min.replace(tzinfo=datetime.UTC)


def _retain(
    rule: dict[str, Any], chosen: list[Candidate], now: datetime.datetime
) -> list[Candidate]:
    template = rule["template"]
    n = rule["params"].get(template, 0)
    if template == "always":
        return chosen
    if template == "nothing":
        return []
    if template == "latestPushedK":
        return sorted(chosen, key=lambda c: (c.pushed, c.digest), reverse=True)[:n]
    if template == "latestPulledN":
        return sorted(chosen, key=lambda c: (c.pulled or _oldest(), c.digest), reverse=True)[:n]
    since = now - datetime.timedelta(days=n)
    if template == "nDaysSinceLastPush":
        return [c for c in chosen if c.pushed >= since]
    if template == "nDaysSinceLastPull":
        return [c for c in chosen if c.pulled is not None and c.pulled >= since]
    raise AssertionError(template)


def _candidates(repository: Repository) -> list[Candidate]:
    """The repository's top-level artifacts with what the rules look at, in
    three queries (tags and labels prefetched, pulls from the audit trail)."""
    rows = (
        Manifest.objects.filter(repository=repository, parent_refs__isnull=True, subject_digest="")
        .prefetch_related("tags", "labels")
        .order_by("id")
    )
    found = []
    for m in rows.defer("payload"):
        tags = sorted(t.name for t in m.tags.all())
        pushed = max([m.created_at, *(t.updated_at for t in m.tags.all())])
        found.append(Candidate(m.digest, tags, {lab.name for lab in m.labels.all()}, pushed, None))
    if not found:
        return found
    # Pull times: the audit trail's pulls of the artifact by digest or by one
    # of its tags (Berth keeps no per-artifact pull column). A tag pulled
    # before it moved counts for the artifact it names now.
    refs: dict[str, Candidate] = {}
    for c in found:
        refs[f"{repository.name}@{c.digest}"] = c
        for tag in c.tags:
            refs[f"{repository.name}:{tag}"] = c
    pulls = (
        AuditEvent.objects.filter(
            project_id=repository.project_id,
            operation=Operation.PULL,
            resource_type=Resource.ARTIFACT,
            resource__in=list(refs),
        )
        .values("resource")
        .annotate(last=Max("occurred_at"))
        .values_list("resource", "last")
    )
    for resource, last in pulls:
        c = refs[resource]
        c.pulled = last if c.pulled is None else max(c.pulled, last)
    return found


@dataclass
class Decision:
    repository: str
    candidates: list[Candidate]
    deleted: list[Candidate]


def decide(
    policy: RetentionPolicy, repository: Repository, now: datetime.datetime | None = None
) -> Decision | None:
    """What the policy keeps and deletes in one repository; None when no rule
    applies to it."""
    now = now or timezone.now()
    parts = access.split_repository(repository.name)
    within = parts[1] if parts else repository.name
    rules = [r for r in policy.rules if _applies(r, within)]
    if not rules:
        return None
    candidates = _candidates(repository)
    locked = set(immutability.protected(repository.name, [t for c in candidates for t in c.tags]))
    for c in candidates:
        c.immutable = any(t in locked for t in c.tags)
    for rule in rules:
        chosen = [c for c in candidates if _selected(rule, c)]
        for c in _retain(rule, chosen, now):
            c.kept_by.append(rule["id"])
    deleted = [c for c in candidates if not c.kept_by and not c.immutable]
    return Decision(repository.name, candidates, deleted)


def _log_table(decision: Decision, dry_run: bool) -> str:
    """Harbor's task log: one row per artifact with its fate."""
    lines = [
        "Digest | Tag | Labels | PushedTime | PulledTime | Retention",
        "-------+-----+--------+------------+------------+----------",
    ]
    gone = {c.digest for c in decision.deleted}
    for c in sorted(decision.candidates, key=lambda c: c.pushed, reverse=True):
        if c.digest in gone:
            fate = "WOULD DELETE" if dry_run else "DELETED"
        elif c.kept_by:
            fate = "RETAIN (rules " + ",".join(str(r) for r in c.kept_by) + ")"
        else:
            fate = "RETAIN (immutable)"
        lines.append(
            " | ".join(
                [
                    c.digest[:19],
                    ",".join(c.tags) or "<none>",
                    ",".join(sorted(c.labels)),
                    c.pushed.isoformat(timespec="seconds"),
                    c.pulled.isoformat(timespec="seconds") if c.pulled else "",
                    fate,
                ]
            )
        )
    return "\n".join(lines) + "\n"


def _stopping(execution_id: int) -> bool:
    return RetentionExecution.objects.filter(pk=execution_id, stop_requested=True).exists()


def run(*, execution_id: int, actor: Actor) -> RetentionExecution:
    """Run an execution (the Celery task's body): one task row per repository,
    deletions through the user's delete path. Safe to run again after a lost
    worker: finished repositories keep their task rows and are skipped."""
    claimed = RetentionExecution.objects.filter(
        pk=execution_id, status__in=ACTIVE, stop_requested=False
    ).update(status=Status.RUNNING)
    execution = RetentionExecution.objects.select_related("policy").get(pk=execution_id)
    if not claimed:
        return execution
    policy = execution.policy
    done = set(
        RetentionTask.objects.filter(execution=execution, end_time__isnull=False).values_list(
            "repository", flat=True
        )
    )
    status = Status.SUCCESS
    error = ""
    for repository in Repository.objects.filter(project_id=policy.project_id).order_by("name"):
        if repository.name in done:
            continue
        if _stopping(execution_id):
            status = Status.STOPPED
            break
        try:
            _run_repository(execution, repository, actor)
        except Exception as exc:  # one repository's failure is logged, the run goes on
            log.exception("retention %s: %s failed", execution_id, repository.name)
            status, error = Status.ERROR, f"{repository.name}: {exc!s:.500}"
    RetentionExecution.objects.filter(pk=execution_id).update(
        status=status, end_time=timezone.now(), error=error
    )
    execution.refresh_from_db()
    return execution


def _run_repository(execution: RetentionExecution, repository: Repository, actor: Actor) -> None:
    decision = decide(execution.policy, repository)
    if decision is None:
        return
    RetentionTask.objects.filter(execution=execution, repository=repository.name).delete()
    accessories = _accessories(repository, [c.digest for c in decision.deleted])
    task = RetentionTask.objects.create(
        execution=execution,
        repository=repository.name,
        total=len(decision.candidates),
        retained=len(decision.candidates) - len(decision.deleted),
        deleted=[
            {"digest": c.digest, "tags": c.tags, "accessories": accessories.get(c.digest, [])}
            for c in decision.deleted
        ],
    )
    notes = []
    status = "Success"
    if not execution.dry_run:
        for c in decision.deleted:
            if _stopping(execution.pk):
                status = "Stopped"
                notes.append("stopped before deleting the rest")
                break
            try:
                _delete_artifact(repository, c.digest, actor, depth=0)
            except RegistryError as exc:
                # Deleted meanwhile, made immutable, listed by a new index: kept.
                notes.append(f"{c.digest}: not deleted: {exc.message}")
                task.retained += 1
    task.log = _log_table(decision, execution.dry_run) + "".join(f"{n}\n" for n in notes)
    task.status = status
    task.end_time = timezone.now()
    task.save(update_fields=["log", "status", "end_time", "retained"])


MAX_ACCESSORY_DEPTH = 4  # a signature of an SBOM of an image, and a bit more


def _accessories(repository: Repository, digests: list[str]) -> dict[str, list[str]]:
    """The referrers (signatures, SBOMs: Harbor's accessories) of each digest."""
    found: dict[str, list[str]] = {}
    rows = Manifest.objects.filter(repository=repository, subject_digest__in=digests)
    for subject, digest in rows.values_list("subject_digest", "digest").order_by("digest"):
        found.setdefault(subject, []).append(digest)
    return found


def _delete_artifact(repository: Repository, digest: str, actor: Actor, depth: int) -> None:
    """Delete an artifact as Harbor's retention does: its accessories first (the
    referrers whose subject it is, theirs before them), each through the user's
    delete path; then the artifact."""
    if depth < MAX_ACCESSORY_DEPTH:
        for accessory in _accessories(repository, [digest]).get(digest, []):
            _delete_artifact(repository, accessory, actor, depth + 1)
    manifest_delete(repository_name=repository.name, reference=digest, actor=actor)


def scheduled_due(moment: datetime.datetime) -> list[RetentionPolicy]:
    """Policies whose cron names this minute."""
    due = []
    for policy in RetentionPolicy.objects.exclude(cron="").select_related("project"):
        try:
            if cron.fires_at(policy.cron, moment):
                due.append(policy)
        except Invalid:
            log.warning("retention policy %s has an unusable cron %r", policy.pk, policy.cron)
    return due
