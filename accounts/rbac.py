"""Harbor's roles and permission matrix (shared/reference/harbor-rbac.md), declared once.

``PROJECT_PERMISSIONS[role]`` and ``PUBLIC_PERMISSIONS`` map resource → actions.
"""

from __future__ import annotations

from collections.abc import Iterable

from accounts.models import Role

ALL = frozenset({"create", "read", "update", "delete", "list", "pull", "push", "operate", "stop"})


def _p(spec: dict[str, str]) -> dict[str, frozenset[str]]:
    return {res: frozenset(a for a in acts.split(",") if a) for res, acts in spec.items()}


_ADMIN = _p(
    {
        "project": "read,update,delete",
        "member": "create,read,update,delete,list",
        "metadata": "create,read,update,delete",
        "log": "list",
        "label": "create,read,update,delete,list",
        "quota": "read",
        "repository": "create,read,update,delete,list,pull,push",
        "tag-retention": "create,read,update,delete,list,operate",
        "immutable-tag": "create,update,delete,list",
        "configuration": "read,update",
        "robot": "create,read,update,delete,list",
        "notification-policy": "create,read,update,delete,list",
        "scan": "create,read,stop",
        "sbom": "create,read,stop",
        "scanner": "create,read",
        "artifact": "create,read,delete,list",
        "artifact-addition": "read",
        "tag": "create,delete,list",
        "accessory": "list",
        "artifact-label": "create,delete",
        "preheat-policy": "create,read,update,delete,list",
        "export-cve": "create,read,list",
    }
)
_MAINTAINER = _p(
    {
        "project": "read",
        "member": "read,list",
        "metadata": "read",
        "label": "create,read,update,delete,list",
        "quota": "read",
        "repository": "create,read,update,delete,list,pull,push",
        "tag-retention": "create,read,update,delete,list,operate",
        "immutable-tag": "create,update,delete,list",
        "configuration": "read",
        "robot": "read,list",
        "notification-policy": "read,list",
        "scan": "create,read,stop",
        "sbom": "create,read,stop",
        "scanner": "read",
        "artifact": "create,read,delete,list",
        "artifact-addition": "read",
        "tag": "create,delete,list",
        "accessory": "list",
        "artifact-label": "create,delete",
        "export-cve": "create,read,list",
    }
)
_DEVELOPER = _p(
    {
        "project": "read",
        "member": "read,list",
        "label": "read,list",
        "quota": "read",
        "repository": "create,read,update,list,pull,push",
        "tag-retention": "create,read,update,delete,list,operate",
        "configuration": "read",
        "robot": "read,list",
        "scan": "read",
        "sbom": "read",
        "scanner": "read",
        "artifact": "create,read,list",
        "artifact-addition": "read",
        "tag": "create,list",
        "accessory": "list",
        "artifact-label": "create,delete",
        "export-cve": "create,read,list",
    }
)
_GUEST = _p(
    {
        "project": "read",
        "member": "read,list",
        "label": "read,list",
        "quota": "read",
        "repository": "read,list,pull",
        "configuration": "read",
        "robot": "read,list",
        "scan": "read",
        "sbom": "read",
        "scanner": "read",
        "artifact": "read,list",
        "artifact-addition": "read",
        "tag": "list",
        "accessory": "list",
    }
)
_LIMITED_GUEST = _p(
    {
        "project": "read",
        "quota": "read",
        "repository": "read,list,pull",
        "configuration": "read",
        "scan": "read",
        "sbom": "read",
        "scanner": "read",
        "artifact": "read,list",
        "artifact-addition": "read",
        "tag": "list",
        "accessory": "list",
    }
)

PROJECT_PERMISSIONS: dict[int, dict[str, frozenset[str]]] = {
    Role.PROJECT_ADMIN: _ADMIN,
    Role.MAINTAINER: _MAINTAINER,
    Role.DEVELOPER: _DEVELOPER,
    Role.GUEST: _GUEST,
    Role.LIMITED_GUEST: _LIMITED_GUEST,
}

# Roles from the least to the most privileged: each one's permissions include
# the ones before it. A user's role in a project is the highest of their own
# and their groups' (accounts.access.member_role).
ROLE_RANK: dict[int, int] = {
    Role.LIMITED_GUEST: 1,
    Role.GUEST: 2,
    Role.DEVELOPER: 3,
    Role.MAINTAINER: 4,
    Role.PROJECT_ADMIN: 5,
}


def highest_role(roles: Iterable[int]) -> int | None:
    """The most privileged of ``roles`` (None for none)."""
    return max(roles, key=lambda role: ROLE_RANK.get(role, 0), default=None)


# What anyone (anonymous included) may do in a public project.
PUBLIC_PERMISSIONS = _p(
    {
        "project": "read",
        "label": "read,list",
        "repository": "list,pull",
        "scan": "read",
        "scanner": "read",
        "artifact": "read,list",
        "artifact-addition": "read",
        "tag": "list",
        "accessory": "list",
    }
)

# System-scope resources a system robot may be granted (a sysadmin holds all).
SYSTEM_PERMISSIONS = _p(
    {
        "audit-log": "list",
        "catalog": "read",
        "garbage-collection": "create,read,update,list,stop",
        "jobservice-monitor": "list,stop",
        "label": "create,read,update,delete",
        "ldap-user": "create,list",
        "preheat-instance": "create,read,update,delete,list",
        "project": "create,list",
        "purge-audit": "create,read,update,list,stop",
        "quota": "read,update,list",
        "registry": "create,read,update,delete,list",
        "replication": "create,read,list",
        "replication-adapter": "list",
        "replication-policy": "create,read,update,delete,list",
        "robot": "create,read,delete,list",
        "scan-all": "create,read,update,stop",
        "scanner": "create,read,update,delete,list",
        "security-hub": "read,list",
        "system-volumes": "read",
        "user": "create,read,update,delete,list",
        "user-group": "create,read,update,delete,list",
    }
)

# Everything a project-level grant can name (the union of the roles).
PROJECT_RESOURCES: dict[str, frozenset[str]] = {
    res: frozenset().union(*(perms.get(res, frozenset()) for perms in PROJECT_PERMISSIONS.values()))
    for res in _ADMIN
}

# The project resources Berth serves (an API, a page or the registry protocol
# acts on them): what the portal's robot permission picker offers. The rest of
# Harbor's matrix (labels, scanners, retention, webhooks, preheat, ...) names
# features Berth does not have; the API still accepts them, as Harbor's does.
SERVED_PROJECT_RESOURCES: dict[str, frozenset[str]] = {
    res: PROJECT_RESOURCES[res]
    for res in (
        "repository",
        "artifact",
        "tag",
        "accessory",
        "immutable-tag",
        "member",
        "robot",
        "metadata",
        "log",
        "quota",
        "project",
    )
}
