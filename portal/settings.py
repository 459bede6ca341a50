"""Berth settings, read from the environment (12-factor).

Every setting an operator may change has a BERTH_* (or the conventional
DATABASE_URL / CELERY_BROKER_URL) environment variable; see docs/configuration.md.
With no environment at all Berth runs embedded: SQLite, blobs on the local
filesystem and a file-based Celery broker, all under ``BERTH_DATA_DIR`` (./data).
"""

import os
from pathlib import Path

import environ

from kit.net import parse_trusted_proxies

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# Settings only compute values: nothing here creates a directory or a file.
# The command line does (kit.process.ensure_data_dir: manage.py, berth, serve).
DATA_DIR = Path(env.str("BERTH_DATA_DIR", default="data")).resolve()
SECRET_KEY_FILE = DATA_DIR / "secret-key"


def _secret_key() -> str:
    """BERTH_SECRET_KEY, or the key kept in the data directory, which
    ``ensure_data_dir`` generates once (``serve`` does before it starts any
    part). Neither: empty, and Django refuses to sign anything ("The SECRET_KEY
    setting must not be empty"). Never a per-process random fallback: replicas
    sharing a data directory (or given the variable) share the key, so sessions
    and signatures survive restarts."""
    key = env.str("BERTH_SECRET_KEY", default="")
    if key:
        return key
    try:
        return SECRET_KEY_FILE.read_text().strip()
    except FileNotFoundError:
        return ""


SECRET_KEY = _secret_key()
DEBUG = env.bool("BERTH_DEBUG", default=False)
ALLOWED_HOSTS = env.list("BERTH_ALLOWED_HOSTS", default=["*"])

BERTH_ADDR = env.str("BERTH_ADDR", default="0.0.0.0:5000")
BERTH_EXTERNAL_URL = env.str("BERTH_EXTERNAL_URL", default="").rstrip("/")
# Reverse proxies in front of Berth (addresses or networks, comma-separated):
# from requests they relay, the client's address is read from X-Forwarded-For
# (kit/net.py). Empty (the default): the header is ignored.
try:
    BERTH_TRUSTED_PROXIES = parse_trusted_proxies(env.list("BERTH_TRUSTED_PROXIES", default=[]))
except ValueError as exc:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"BERTH_TRUSTED_PROXIES: {exc}") from None
# Where Berth's own outbound requests may go (kit/outbound.py): networks,
# comma-separated. Unset, BERTH_OUTBOUND_DENY is kit.outbound.DEFAULT_DENY
# (link-local, multicast, unspecified, reserved) and everything else is allowed.
try:
    BERTH_OUTBOUND_ALLOW = parse_trusted_proxies(env.list("BERTH_OUTBOUND_ALLOW", default=[]))
    BERTH_OUTBOUND_DENY = (
        parse_trusted_proxies(env.list("BERTH_OUTBOUND_DENY"))
        if "BERTH_OUTBOUND_DENY" in os.environ
        else None
    )
except ValueError as exc:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"BERTH_OUTBOUND_ALLOW/DENY: {exc}") from None

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Berth's apps in their dependency order (docs/architecture.md).
    "kit",
    "audit",
    "accounts",
    "registry",
    "replication",
    "rest_framework",
    "drf_spectacular",
    # Swagger UI's files as static files: /devcenter-api-2.0 loads nothing
    # from a CDN.
    "drf_spectacular_sidecar",
    # CAS single logout: which session a service ticket opened (accounts/cas.py).
    "django_cas_ng",
]

# A Celery process started by `serve` (BERTH_PROCESS_ROLE worker or scheduler)
# serves no admin page: the admin without its autodiscovery (every app's admin
# module, its forms and views) starts ~16 MiB lighter (docs/benchmarks.md).
if env.str("BERTH_PROCESS_ROLE", default="") in ("worker", "scheduler"):
    INSTALLED_APPS = [
        "django.contrib.admin.apps.SimpleAdminConfig" if app == "django.contrib.admin" else app
        for app in INSTALLED_APPS
    ]

AUTH_USER_MODEL = "accounts.User"
# Password checks for users: every entry point reaches these through
# accounts.services.auth.check_credentials (throttled). An LDAP, OIDC or CAS
# backend is added here; docs/access-control.md, "The identity seam".
# Local users first, then every enabled LDAP identity provider in its order
# (accounts/directory.py; providers are rows, configured at run time).
AUTHENTICATION_BACKENDS = [
    "accounts.services.auth.LocalUserBackend",
    "accounts.backends.LDAPProvidersBackend",
    # Browser sessions from OpenID Providers and CAS servers (no credentials).
    "accounts.services.sso.SsoSessionBackend",
]

# The full stack serves the portal, the admin and the API. /v2 does not pass
# through it: portal.wsgi routes /v2 to a handler with no middleware at all.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The portal's language: the session's choice (the switch on every page),
    # else Accept-Language, else English; the API and the registry always
    # answer in English, as Harbor's do (portal/middleware.py).
    "portal.middleware.PortalLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # A page reads the user's role in a project once (accounts.access).
    "portal.middleware.RoleMemoMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# sqlite:///path (the default) or postgres://user:password@host:port/name (also
# postgresql://; psycopg 3), query parameters becoming connection options
# (?sslmode=require). Set but empty is unset. See docs/scale-out.md.
DATABASES = {
    "default": env.db_url_config(
        env.str("DATABASE_URL", default="") or f"sqlite:///{DATA_DIR / 'berth.sqlite3'}"
    ),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # An unreachable server fails a request in seconds instead of hanging its
    # thread; the name shows up in pg_stat_activity.
    _pg = DATABASES["default"].setdefault("OPTIONS", {})
    _pg.setdefault("connect_timeout", 10)
    _pg.setdefault("application_name", "berth")
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the one writer; IMMEDIATE transactions take the
    # write lock up front so two writers queue instead of deadlocking on upgrade;
    # synchronous=FULL makes a committed push survive a crash or power loss.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
            ),
        }
    )
    # Django's backend, but writers of one process queue on a Python lock
    # instead of sleeping in SQLite's busy handler (kit/db/sqlite3/base.py).
    DATABASES["default"]["ENGINE"] = "kit.db.sqlite3"
# Keep database connections across requests (one per server thread): opening
# one per request costs more than the registry's whole manifest lookup.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("BERTH_DB_CONN_MAX_AGE", default=600)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Blob bytes: content-addressed storage behind registry.storage (see docs/storage.md).
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(DATA_DIR / "media")},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "blobs": {
        "BACKEND": "registry.storage.filesystem.FileSystemBlobStore",
        "OPTIONS": {"location": str(DATA_DIR / "registry")},
    },
}

# Blobs on S3 or an S3-compatible server (docs/scale-out.md):
#   BERTH_STORAGE_URL=s3://bucket/prefix?endpoint=http://minio:9000&region=us-east-1&path_style=true
# Credentials come from boto3's default chain (AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY, a profile, an instance role), never from this URL.
BERTH_STORAGE_URL = env.str("BERTH_STORAGE_URL", default="")
if BERTH_STORAGE_URL:
    from urllib.parse import parse_qsl, urlsplit

    from django.core.exceptions import ImproperlyConfigured

    _s3 = urlsplit(BERTH_STORAGE_URL)
    if _s3.scheme != "s3" or not _s3.hostname or "@" in _s3.netloc:
        raise ImproperlyConfigured(
            "BERTH_STORAGE_URL must look like s3://bucket/prefix?endpoint=…; credentials "
            "go in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, not in the URL"
        )
    _s3_query = dict(parse_qsl(_s3.query))
    _s3_known = {"endpoint", "region", "path_style", "create_bucket", "part_size", "lock_ttl"}
    if set(_s3_query) - _s3_known:
        raise ImproperlyConfigured(
            f"BERTH_STORAGE_URL: unknown options {sorted(set(_s3_query) - _s3_known)}"
        )

    def _s3_flag(name: str, default: bool) -> bool:
        value = _s3_query.get(name, str(default)).lower()
        if value not in ("true", "false", "1", "0", "yes", "no"):
            raise ImproperlyConfigured(f"BERTH_STORAGE_URL: {name} must be true or false")
        return value in ("true", "1", "yes")

    _s3_options: dict[str, object] = {
        "bucket_name": _s3.netloc,
        "location": _s3.path.strip("/"),
        "endpoint_url": _s3_query.get("endpoint") or None,
        "region_name": _s3_query.get("region") or None,
        "create_bucket": _s3_flag("create_bucket", True),
    }
    if _s3_flag("path_style", False):
        _s3_options["addressing_style"] = "path"
    try:
        if "part_size" in _s3_query:
            _s3_options["part_size"] = int(_s3_query["part_size"])
        if "lock_ttl" in _s3_query:
            _s3_options["lock_ttl"] = float(_s3_query["lock_ttl"])
    except ValueError:
        raise ImproperlyConfigured("BERTH_STORAGE_URL: part_size, lock_ttl: numbers") from None
    STORAGES["blobs"] = {"BACKEND": "registry.storage.s3.S3BlobStore", "OPTIONS": _s3_options}
# true: blob GETs answer 307 to a presigned URL of the bucket (S3 storage only).
BERTH_STORAGE_REDIRECT = env.bool("BERTH_STORAGE_REDIRECT", default=False)
# Behind nginx (deploy/nginx/berth.conf): blob GETs answer with an X-Accel-Redirect
# to this internal location and nginx sends the file itself (sendfile, ranges).
# Filesystem storage only; "" (the default) streams blobs from Berth.
BERTH_BLOB_X_ACCEL_REDIRECT = env.str("BERTH_BLOB_X_ACCEL_REDIRECT", default="")
if BERTH_BLOB_X_ACCEL_REDIRECT and not (
    BERTH_BLOB_X_ACCEL_REDIRECT.startswith("/") and BERTH_BLOB_X_ACCEL_REDIRECT.endswith("/")
):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("BERTH_BLOB_X_ACCEL_REDIRECT must be a path like /_berth_blobs/")

# Registry limits (docs/configuration.md).
BERTH_MANIFEST_MAX_BYTES = env.int("BERTH_MANIFEST_MAX_BYTES", default=4 * 1024 * 1024)
BERTH_UPLOAD_MAX_AGE = env.int("BERTH_UPLOAD_MAX_AGE", default=24 * 3600)
BERTH_UPLOAD_PURGE_INTERVAL = env.int("BERTH_UPLOAD_PURGE_INTERVAL", default=3600)
BERTH_UPLOADS_PER_CLIENT = env.int("BERTH_UPLOADS_PER_CLIENT", default=1000)
# Garbage collection (docs/gc.md): the shortest time window a run honours,
# whatever its time_window; how stale a link's last-seen time may get before a
# HEAD/GET refreshes it; how long an upload waits for GC to finish deleting a
# blob of the same digest.
BERTH_GC_MIN_WINDOW = env.int("BERTH_GC_MIN_WINDOW", default=600)
BERTH_GC_TOUCH_INTERVAL = env.int("BERTH_GC_TOUCH_INTERVAL", default=60)
BERTH_GC_UPLOAD_WAIT = env.int("BERTH_GC_UPLOAD_WAIT", default=30)
# Seconds between marking a batch of blobs and deleting their bytes: 0 in
# production; the race tests widen the window pushes race a sweep in.
BERTH_GC_SWEEP_PAUSE = env.float("BERTH_GC_SWEEP_PAUSE", default=0.0)
# A GC or purge run no worker has touched for this long (seconds) no longer
# blocks a new one: it is finished as Error when the next is asked for.
BERTH_SYSTEM_JOB_STALE = env.int("BERTH_SYSTEM_JOB_STALE", default=3600)
BERTH_PAGE_MAX = env.int("BERTH_PAGE_MAX", default=1000)
# false: /v2 refuses to delete manifests, tags and blobs (405 UNSUPPORTED).
BERTH_DELETES_ENABLED = env.bool("BERTH_DELETES_ENABLED", default=True)
BERTH_WEB_WORKERS = env.int("BERTH_WEB_WORKERS", default=1)
BERTH_WEB_THREADS = env.int("BERTH_WEB_THREADS", default=16)
# Request bodies (portal/bodies.py, docs/security.md): at most this many of a web
# worker's threads may wait in a read of a body at once (the rest serve /v2 reads
# and the probes whatever slow senders do); a body that goes BERTH_BODY_TIMEOUT
# seconds without a byte is ended (408); an answer given before the body was read
# waits for up to BERTH_BODY_DRAIN_MAX bytes of it to be discarded, so the
# client, done writing, reads it.
BERTH_WEB_BODY_THREADS = env.int(
    "BERTH_WEB_BODY_THREADS", default=max(1, BERTH_WEB_THREADS * 3 // 4)
)
BERTH_BODY_TIMEOUT = env.float("BERTH_BODY_TIMEOUT", default=30.0)
if not 1 <= BERTH_WEB_BODY_THREADS <= BERTH_WEB_THREADS or BERTH_BODY_TIMEOUT <= 0:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "BERTH_WEB_BODY_THREADS must be between 1 and BERTH_WEB_THREADS, "
        "BERTH_BODY_TIMEOUT a positive number of seconds"
    )
BERTH_BODY_DRAIN_MAX = env.int("BERTH_BODY_DRAIN_MAX", default=16 * 1024 * 1024)
# Token service and logins.
BERTH_TOKEN_TTL = env.int("BERTH_TOKEN_TTL", default=1800)
BERTH_REFRESH_TOKEN_TTL = env.int("BERTH_REFRESH_TOKEN_TTL", default=7 * 24 * 3600)
# Seconds a process trusts that the principal a token names (user or robot) is
# still there and enabled before it asks the database again: the longest a
# disabled or deleted principal's unexpired token keeps working (at most 60).
BERTH_PRINCIPAL_RECHECK_SECONDS = env.int("BERTH_PRINCIPAL_RECHECK_SECONDS", default=30)
if not 0 <= BERTH_PRINCIPAL_RECHECK_SECONDS <= 60:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("BERTH_PRINCIPAL_RECHECK_SECONDS must be between 0 and 60")
# Seconds a directory (LDAP) user's verified password is trusted without asking
# the directory again (docker pulls with a directory password); 0 disables it.
BERTH_LDAP_CREDENTIAL_TTL = env.int("BERTH_LDAP_CREDENTIAL_TTL", default=60)
# Seconds between refreshes of LDAP users' groups and attributes (the job
# accounts.tasks.refresh_directories).
BERTH_LDAP_REFRESH_INTERVAL = env.int("BERTH_LDAP_REFRESH_INTERVAL", default=3600)
# Personal access tokens (docs/tokens.md): the longest a token may live, in
# days; 0 lets users make tokens that never expire. The CLI secret is exempt.
BERTH_ACCESS_TOKEN_MAX_DAYS = env.int("BERTH_ACCESS_TOKEN_MAX_DAYS", default=0)
if BERTH_ACCESS_TOKEN_MAX_DAYS < 0:
    raise ImproperlyConfigured("BERTH_ACCESS_TOKEN_MAX_DAYS must be 0 or a number of days")
BERTH_LOGIN_FAILURES_ALLOWED = env.int("BERTH_LOGIN_FAILURES_ALLOWED", default=10)
BERTH_LOGIN_THROTTLE_SECONDS = env.int("BERTH_LOGIN_THROTTLE_SECONDS", default=60)
BERTH_SELF_REGISTRATION = env.bool("BERTH_SELF_REGISTRATION", default=False)
# "everyone" or "adminonly": who may create projects.
BERTH_PROJECT_CREATION = env.str("BERTH_PROJECT_CREATION", default="everyone")
# Seconds between writes of buffered audit events (pushes, pulls, logins).
BERTH_AUDIT_FLUSH_SECONDS = env.float("BERTH_AUDIT_FLUSH_SECONDS", default=1.0)
# Write them from a background thread (off in the in-process test suite, which
# flushes explicitly).
BERTH_AUDIT_BACKGROUND = env.bool("BERTH_AUDIT_BACKGROUND", default=True)
# Durable domain events (kit/events.py): who consumes them (name -> dotted
# path of ``handler(events)``), how often the scheduler sweeps for undelivered
# ones, and at most how often one process asks a worker for a delivery run.
BERTH_EVENT_CONSUMERS = {
    "audit": "audit.consumers.record",
    "replication": "replication.consumers.trigger",
}
BERTH_EVENT_SWEEP_SECONDS = env.float("BERTH_EVENT_SWEEP_SECONDS", default=10.0)
BERTH_EVENT_REQUEST_INTERVAL = env.float("BERTH_EVENT_REQUEST_INTERVAL", default=0.5)
# Off: nothing is published on commit and only the sweep (or a direct
# kit.events.deliver()) delivers; the in-process test suite turns it off.
BERTH_EVENT_REQUEST_ON_COMMIT = env.bool("BERTH_EVENT_REQUEST_ON_COMMIT", default=True)
# Where the audit writer hands the pulls it batched (repositories' pull counts):
# named, so audit (below registry) imports no content code.
BERTH_AUDIT_PULL_SINK = "registry.services.repositories.record_pulls"
# Project name -> id for audit entries that name their project only (pulls).
BERTH_AUDIT_PROJECT_IDS = "accounts.services.projects.project_ids"
# A project's quota (hard limits and usage) for its summary: quotas are content's.
BERTH_PROJECT_QUOTA = "registry.services.quotas.project_quota"
# A new project's storage limit, set in its creation's transaction.
BERTH_PROJECT_CREATED_QUOTA = "registry.services.quotas.project_created"
# Harbor's storage_per_project: the limit, in bytes, a new project gets (-1:
# unlimited; a sysadmin may change it at runtime through /configurations).
BERTH_STORAGE_PER_PROJECT = env.int("BERTH_STORAGE_PER_PROJECT", default=-1)
# Seconds between runs of the quota reconcile job (folds usage rows, repairs).
BERTH_QUOTA_RECONCILE_INTERVAL = env.float("BERTH_QUOTA_RECONCILE_INTERVAL", default=900.0)
# The CA certificate that signed the TLS certificate clients see (the proxy's in
# front), served at /api/v2.0/systeminfo/getcert; none: 404, as Harbor.
BERTH_ROOT_CA_FILE = env.str("BERTH_ROOT_CA_FILE", default="")
# Seconds each readiness check (database, storage, broker, cache) may take.
BERTH_READY_TIMEOUT = env.float("BERTH_READY_TIMEOUT", default=2.0)
# What readiness checks (kit/health.py), by name; the shared cache is added
# when BERTH_CACHE_URL is set. Dotted paths, so the kit imports no app.
BERTH_READINESS_CHECKS = {
    "database": "kit.health.database",
    "storage": "registry.storage.readiness_check",
    "broker": "portal.celery.readiness_check",
}
# Seconds a client may take to send its request headers (slowloris guard).
BERTH_HEADER_TIMEOUT = env.int("BERTH_HEADER_TIMEOUT", default=30)

# Caches (docs/scale-out.md). BERTH_CACHE_URL=redis://… shares one Redis among
# all processes: manifest lookups, verified credentials, login throttle counters.
# Without it every process keeps its own. BERTH_MANIFEST_CACHE: auto (shared with
# BERTH_CACHE_URL, else process memory with one web worker and none with more),
# shared, local or off — several replicas without a shared cache need off.
BERTH_CACHE_URL = env.str("BERTH_CACHE_URL", default="")
BERTH_MANIFEST_CACHE = env.str("BERTH_MANIFEST_CACHE", default="auto")
_manifest_cache_modes = ("auto", "shared", "local", "off")
if BERTH_CACHE_URL and BERTH_CACHE_URL.partition("://")[0] not in ("redis", "rediss", "unix"):
    from django.core.exceptions import ImproperlyConfigured

    # Checked at start: redis-py would only refuse it at the first request.
    raise ImproperlyConfigured("BERTH_CACHE_URL must be a redis://, rediss:// or unix:// URL")
if BERTH_MANIFEST_CACHE not in _manifest_cache_modes:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"BERTH_MANIFEST_CACHE must be one of {_manifest_cache_modes}")
if BERTH_MANIFEST_CACHE == "shared" and not BERTH_CACHE_URL:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("BERTH_MANIFEST_CACHE=shared needs BERTH_CACHE_URL")
if BERTH_MANIFEST_CACHE == "auto":
    BERTH_MANIFEST_CACHE = (
        "shared" if BERTH_CACHE_URL else "local" if BERTH_WEB_WORKERS == 1 else "off"
    )
# Seconds a manifest lookup stays cached: the longest a lookup can outlive a
# write whose invalidation Redis missed (docs/scale-out.md). In process memory
# no invalidation is ever missed.
BERTH_MANIFEST_CACHE_TTL = env.int(
    "BERTH_MANIFEST_CACHE_TTL", default=60 if BERTH_MANIFEST_CACHE == "shared" else 3600
)


def _redis_cache(prefix: str) -> dict[str, object]:
    return {
        "BACKEND": "kit.cache.ResilientRedisCache",
        "LOCATION": BERTH_CACHE_URL,
        "KEY_PREFIX": prefix,
    }


CACHES = {
    "default": (
        _redis_cache("berth")
        if BERTH_CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    ),
    # Per process, always: what a process falls back to while the shared cache is
    # unreachable (login throttle counters, verified credentials).
    "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "berth"},
    # Whether the principal a token names is still enabled (accounts/services/
    # auth.py): per process, read on every request that carries a token.
    "principals": {"BACKEND": "kit.cache.ProcessCache", "LOCATION": "berth-principals"},
    # Manifest lookups (registry/services/cache.py).
    "manifests": {
        "shared": _redis_cache("berth-manifests"),
        "local": {
            "BACKEND": "kit.cache.ProcessCache",
            "LOCATION": "berth-manifests",
            "OPTIONS": {"MAX_ENTRIES": 20_000},
        },
        "off": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"},
    }[BERTH_MANIFEST_CACHE],
}

# Celery: a broker that needs no server by default (kombu's filesystem transport
# in the data directory); redis:// or amqp:// when scaled out.
# Replication (docs/replication.md): how long a worker's claim on an
# execution or task lasts without renewal (a killed worker's work is taken
# over after it), how often the scheduler starts due cron runs and re-queues
# orphaned executions, the size of the chunks a blob is copied in (memory per
# copy is about twice this), finished executions kept per policy.
BERTH_REPLICATION_LEASE_SECONDS = env.float("BERTH_REPLICATION_LEASE_SECONDS", default=60.0)
BERTH_REPLICATION_TICK_SECONDS = env.float("BERTH_REPLICATION_TICK_SECONDS", default=30.0)
BERTH_REPLICATION_CHUNK_BYTES = env.int("BERTH_REPLICATION_CHUNK_BYTES", default=16 << 20)
# Tasks of one execution copied at once (threads of the worker running it).
BERTH_REPLICATION_PARALLEL = env.int("BERTH_REPLICATION_PARALLEL", default=4)
BERTH_REPLICATION_KEEP_EXECUTIONS = env.int("BERTH_REPLICATION_KEEP_EXECUTIONS", default=50)
# Each request to an endpoint is tried again this many times on network errors,
# 5xx and 429, after a back-off that starts here and doubles (at most 30 s).
BERTH_REPLICATION_RETRIES = env.int("BERTH_REPLICATION_RETRIES", default=4)
BERTH_REPLICATION_BACKOFF_SECONDS = env.float("BERTH_REPLICATION_BACKOFF_SECONDS", default=0.5)
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost/")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The folders are created by kit.process.ensure_data_dir. kombu's transport,
    # with messages renamed into place whole (kit/broker.py says why).
    CELERY_BROKER_TRANSPORT = "kit.broker:Transport"
    _queue = DATA_DIR / "queue"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue / "in"),
        "data_folder_out": str(_queue / "in"),
        "processed_folder": str(_queue / "processed"),
        "control_folder": str(_queue / "control"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A task whose worker died unacknowledged is handed out again after this many
    # seconds (RabbitMQ does it as soon as the connection drops). Longer than the
    # longest task, or a slow task runs twice.
    # Workers look for such tasks every 10 s (kombu's default: every 100 s).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("BERTH_TASK_VISIBILITY_TIMEOUT", default=3600),
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
    }
# Acknowledged when done, not when received: a worker killed mid-task leaves the
# task to another (every task is idempotent and claims what it must do once).
CELERY_TASK_ACKS_LATE = True
# JSON only (Celery's default, pinned): never pickle, which would run code
# from whoever can write to the broker.
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "deliver-events": {
        "task": "kit.tasks.deliver_events",
        "schedule": BERTH_EVENT_SWEEP_SECONDS,
    },
    "refresh-directories": {
        "task": "accounts.tasks.refresh_directories",
        "schedule": BERTH_LDAP_REFRESH_INTERVAL,
        "kwargs": {"scheduled": True},
    },
    "replication-tick": {
        "task": "replication.tasks.tick",
        "schedule": BERTH_REPLICATION_TICK_SECONDS,
    },
    "purge-stale-uploads": {
        "task": "registry.tasks.purge_stale_uploads",
        "schedule": BERTH_UPLOAD_PURGE_INTERVAL,
        # Claims its period first: runs once however many schedulers send it.
        "kwargs": {"scheduled": True},
    },
    "retention-tick": {
        "task": "registry.tasks.retention_tick",
        "schedule": 60.0,
        # Claims its minute first: runs once however many schedulers send it.
        "kwargs": {"scheduled": True},
    },
    "reconcile-quotas": {
        "task": "registry.tasks.reconcile_quotas",
        "schedule": BERTH_QUOTA_RECONCILE_INTERVAL,
        "kwargs": {"scheduled": True},
    },
    # Garbage collection and the audit-log purge on their Harbor schedules
    # (registry/services/systemjobs.py): each minute is claimed once.
    "system-jobs": {
        "task": "registry.tasks.system_jobs_tick",
        "schedule": 60,
    },
}

# Passwords: Argon2 (slow, salted); checked once at login or token issue, never
# per registry request (verified credentials and tokens are cached).
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [{"NAME": "accounts.passwords.HarborPasswordPolicy"}]

LANGUAGE_CODE = "en"
# The portal's languages (docs/portal.md): Berth's own strings are in
# locale/<lang>/LC_MESSAGES/django.po, compiled .mo files committed beside them.
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.auth.BasicAuthentication",
        "accounts.api.auth.IdTokenAuthentication",
        "accounts.api.auth.HarborSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [],
    "EXCEPTION_HANDLER": "accounts.api.errors.handle",
    "DEFAULT_RENDERER_CLASSES": ["accounts.api.codec.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["accounts.api.codec.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "accounts.api.negotiation.AnyAccept",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Berth API",
    "DESCRIPTION": "Berth's Harbor-compatible management API (what Berth implements).",
    "VERSION": "2.0",
    "SCHEMA_PATH_PREFIX": "/api/v2.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "DISABLE_ERRORS_AND_WARNINGS": True,
    # <id:…> in the routes (accounts/api/params.py): a positive 64-bit key.
    "PATH_CONVERTER_OVERRIDES": {
        "id": {"type": "integer", "format": "int64", "minimum": 1, "maximum": 2**63 - 1}
    },
    # Swagger UI at /devcenter-api-2.0 (Harbor's path) from Berth's own static
    # files; no validator badge (Swagger UI would send the document's URL to
    # validator.swagger.io).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Tags start collapsed: 130-odd operations expanded at once do not all
    # render (docs/api.md).
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None, "docExpansion": "none"},
}

# Browser sessions as Harbor's clients expect them.
SESSION_COOKIE_NAME = "sid"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_NAME = "__csrf"
CSRF_HEADER_NAME = "HTTP_X_HARBOR_CSRF_TOKEN"
SESSION_COOKIE_SECURE = env.bool(
    "BERTH_SECURE_COOKIES", default=BERTH_EXTERNAL_URL.startswith("https://")
)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# Sign-in is the site's own page at /; signing out comes back to it.
LOGIN_URL = "/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

LOG_LEVEL = env.str("BERTH_LOG_LEVEL", default="INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # A 404 is an ordinary answer of the registry protocol, not a warning.
        "django.request": {"level": "ERROR"},
    },
}
