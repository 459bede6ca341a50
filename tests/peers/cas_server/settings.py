"""A CAS server for the SSO tests: django-mama-cas (PyPI) in a Django project of
its own, run as its own process by ``run.py`` — its own database, cookie names
and port, sharing nothing with Berth but the loopback.

Its settings come from the JSON file named by ``CAS_PEER_SETTINGS`` (run.py):
the data directory, the services allowed (a regular expression on the service
URL, with single logout to that URL) and the users with their attributes."""

import json
import os
from pathlib import Path

PEER = json.loads(Path(os.environ["CAS_PEER_SETTINGS"]).read_text())
DATA = Path(PEER["data_dir"])

SECRET_KEY = "cas-peer-" + PEER["data_dir"]  # a test peer's, never a real server's
DEBUG = True  # runserver serves the login page's static files
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "mama_cas",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
INSTALLED_APPS.append("django.contrib.messages")
ROOT_URLCONF = "cas_server.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [Path(__file__).resolve().parent / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA / "cas.sqlite3"}}
STATIC_URL = "/static/"
# Its own cookies: Berth's (sid, __csrf) and the CAS server's never meet even
# on the same host name.
SESSION_COOKIE_NAME = "cas_peer_session"
CSRF_COOKIE_NAME = "cas_peer_csrf"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

MAMA_CAS_SERVICES = [
    {
        "SERVICE": service,
        "CALLBACKS": ["cas_server.attributes.peer_attributes"],
        "LOGOUT_ALLOW": True,
    }
    for service in PEER["services"]
]
MAMA_CAS_FOLLOW_LOGOUT_URL = True
