from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class KitConfig(AppConfig):
    name = "kit"
    verbose_name = _("Events")
    default_auto_field = "django.db.models.BigAutoField"
