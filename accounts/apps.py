from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Identity and access"

    def ready(self) -> None:
        # The OIDC and CAS kinds declare their settings and pings.
        from accounts import cas, oidc

        oidc.register()
        cas.register()
