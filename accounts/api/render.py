"""Harbor's JSON shapes for the control plane's objects."""

from __future__ import annotations

import datetime
from typing import Any

from accounts.models import Member, PersonalAccessToken, Project, Robot, Role, User
from accounts.services.auth import TOKEN_PREFIX


def ts(value: datetime.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def project(p: Project, *, role: int | None, repo_count: int) -> dict[str, Any]:
    return {
        "project_id": p.pk,
        "name": p.name,
        "owner_id": p.owner_id,
        "owner_name": p.owner.username if p.owner_id and p.owner else "",
        "creation_time": ts(p.created_at),
        "update_time": ts(p.updated_at),
        "deleted": False,
        "repo_count": repo_count,
        "togglable": True,
        "current_user_role_id": role or 0,
        "current_user_role_ids": [role] if role else [],
        "metadata": {**p.metadata, "public": "true" if p.public else "false"},
        "cve_allowlist": {"items": [], "project_id": p.pk},
    }


def member(m: Member) -> dict[str, Any]:
    return {
        "id": m.pk,
        "project_id": m.project_id,
        "entity_name": m.user.username,
        "entity_id": m.user_id,
        "entity_type": "u",
        "role_id": m.role,
        "role_name": Role(m.role).label,
    }


def user(u: User) -> dict[str, Any]:
    # Harbor leaves empty optional strings out (its models are omitempty);
    # clients that validate (harborapi) tell "" from absent.
    optional = {"email": u.email, "realname": u.realname, "comment": u.comment}
    return {
        "user_id": u.pk,
        "username": u.username,
        **{key: value for key, value in optional.items() if value},
        "sysadmin_flag": u.is_superuser,
        "admin_role_in_auth": False,
        "creation_time": ts(u.date_joined),
        "update_time": ts(u.date_joined),
    }


def cli_secret(t: PersonalAccessToken, secret: str) -> dict[str, Any]:
    """Harbor's OIDCUserInfo, for the user's CLI secret (``subiss``: Berth binds
    external identities elsewhere; empty here)."""
    return {
        "id": t.pk,
        "user_id": t.user_id,
        "subiss": "",
        "secret": secret,
        "creation_time": ts(t.created_at),
        "update_time": ts(t.created_at),
    }


def robot(r: Robot) -> dict[str, Any]:
    return {
        "id": r.pk,
        "name": r.name,
        "description": r.description,
        "level": r.level,
        "duration": r.duration,
        "editable": True,
        "disable": r.disabled,
        "expires_at": int(r.expires_at.timestamp()) if r.expires_at else -1,
        "permissions": r.permissions,
        "creator_type": r.creator.split(":", 1)[0] if r.creator else "",
        "creation_time": ts(r.created_at),
        "update_time": ts(r.updated_at),
    }


def token(t: PersonalAccessToken) -> dict[str, Any]:
    """A personal access token without its secret: ``prefix`` is the secret's
    public start (``berth_pat_`` and its key), enough to recognise it."""
    return {
        "id": t.pk,
        "name": t.name,
        "user_id": t.user_id,
        "username": t.user.username,
        "prefix": f"{TOKEN_PREFIX}{t.key}" if t.key else "",
        "permissions": t.permissions,
        "unrestricted": t.unrestricted,
        "expires_at": ts(t.expires_at),
        "revoked_at": ts(t.revoked_at),
        "creation_time": ts(t.created_at),
        "last_used_at": ts(t.last_used_at),
    }
