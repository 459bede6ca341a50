"""The attributes the CAS peer releases: the user's e-mail and name, and the
``groups`` its settings give them (a list)."""

from typing import Any

from django.conf import settings


def peer_attributes(user: Any, service: str) -> dict[str, Any]:
    account = settings.PEER["users"].get(user.get_username(), {})
    return {
        "email": user.email,
        "display_name": account.get("name", ""),
        "groups": list(account.get("groups", [])),
    }
