from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Identity and access")

    # LDAP, OIDC and CAS declare their settings and ping when their module is
    # first imported (accounts.services.providers.kind_info), not at start.
