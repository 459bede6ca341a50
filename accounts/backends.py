"""The LDAP entry of ``AUTHENTICATION_BACKENDS``, without LDAP in memory.

Django imports every configured backend at the first sign-in. The directory
sign-in itself (accounts/directory.py) needs python-ldap and django-auth-ldap,
~25 MiB in every process that imports them, and most installations enable no
LDAP provider. This backend imports it only once one is enabled; until then a
password it is asked about costs one query.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from accounts.models import IdentityProvider, User
from accounts.services import providers


class LDAPProvidersBackend:
    """The Django authentication backend for every enabled LDAP provider."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        if not username or not password:
            return None
        if not providers.any_enabled(IdentityProvider.Kind.LDAP):
            return None
        from accounts import directory

        return directory.authenticate(request, username, password)

    def get_user(self, user_id: int) -> User | None:
        """The user of a browser session signed in through a directory: gone
        once its provider is disabled or deleted (one query per request, as
        Django's own backend)."""
        return (
            User.objects.filter(
                pk=user_id,
                is_active=True,
                identities__provider__kind=IdentityProvider.Kind.LDAP,
                identities__provider__enabled=True,
            )
            .distinct()
            .first()
        )
