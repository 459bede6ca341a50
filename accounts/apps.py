from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Identity and access"

    def ready(self) -> None:
        # The LDAP kind's ping (accounts.services.providers.KINDS).
        from accounts import directory  # noqa: F401
