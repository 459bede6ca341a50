from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Identity and access"

    def ready(self) -> None:
        # Each kind declares its settings and its ping
        # (accounts.services.providers.KINDS): LDAP, OIDC and CAS.
        from accounts import cas, directory, oidc  # noqa: F401

        oidc.register()
        cas.register()
