from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Identity and access")

    def ready(self) -> None:
        # Each kind declares its settings and its ping
        # (accounts.services.providers.KINDS): LDAP, OIDC and CAS.
        from accounts import cas, directory, oidc  # noqa: F401

        oidc.register()
        cas.register()
