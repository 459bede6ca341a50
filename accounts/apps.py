from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Identity and access")

    def ready(self) -> None:
        # The LDAP kind's ping (accounts.services.providers.KINDS).
        from accounts import directory  # noqa: F401
