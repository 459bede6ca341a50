"""What users deploy besides the image: deploy/docker-compose.yml (checked by
docker-compose itself), the systemd units (systemd-analyze verify) and the Helm
chart (helm lint and helm template, built by tests/peers/build-go-peers.sh).
Each wiring is also fed to Berth's own settings, which refuse a malformed URL.

None of these starts PostgreSQL, Redis or MinIO images or a cluster: this
machine cannot pull images, and has no Kubernetes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

pytestmark = pytest.mark.dbindependent  # renders and checks files; no database

REPO_ROOT = Path(__file__).resolve().parent.parent
DEPLOY = REPO_ROOT / "deploy"
CHART = DEPLOY / "helm" / "berth"
PEERS = Path(os.environ.get("BERTH_PEERS_BIN", REPO_ROOT / ".peers" / "bin"))
BERTH_ROLES = {"web", "worker", "scheduler"}
SECRETS = {
    "BERTH_SECRET_KEY": "s" * 50,
    "BERTH_ADMIN_PASSWORD": "Compose-Adm1n",
    "POSTGRES_PASSWORD": "pg-Passw0rd",
    "MINIO_ROOT_PASSWORD": "minio-Passw0rd",
}


def berth_settings(env: dict[str, str], tmp_path: Path) -> dict:
    """Berth's resolved settings for an environment, in a fresh process."""
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'db': s.DATABASES['default'], 'blobs': s.STORAGES['blobs'], "
        "'broker': s.CELERY_BROKER_URL, 'secret_key': s.SECRET_KEY}, default=str))"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "AWS_"))}
    base.pop("DATABASE_URL", None)
    base.pop("CELERY_BROKER_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={
            **base,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "BERTH_DATA_DIR": str(tmp_path / "settings-data"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------
# docker compose
# --------------------------------------------------------------------------


def compose(*args: str, env_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker-compose", "-f", str(DEPLOY / "docker-compose.yml"), "--env-file", str(env_file),
         *args],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip


@pytest.fixture
def compose_config(tmp_path) -> dict:
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in SECRETS.items()))
    result = compose("config", env_file=env_file)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_runs_the_three_roles_on_postgres_redis_minio(compose_config):
    services = compose_config["services"]
    assert set(services) == BERTH_ROLES | {"postgres", "redis", "minio"}
    for role in BERTH_ROLES:
        assert services[role]["command"][:3] == ["serve", "--role", role]
        assert services[role]["image"] == "berth:latest"
    # One configuration for every role.
    environments = [services[role]["environment"] for role in sorted(BERTH_ROLES)]
    assert environments[0] == environments[1] == environments[2]
    env = environments[0]

    db = urlsplit(env["DATABASE_URL"])
    postgres = services["postgres"]["environment"]
    assert (db.scheme, db.hostname, db.port) == ("postgres", "postgres", 5432)
    assert (db.username, db.password) == (postgres["POSTGRES_USER"], SECRETS["POSTGRES_PASSWORD"])
    assert db.path == "/" + postgres["POSTGRES_DB"]
    assert "C.UTF-8" in postgres["POSTGRES_INITDB_ARGS"]

    s3 = urlsplit(env["BERTH_STORAGE_URL"])
    query = parse_qs(s3.query)
    assert s3.scheme == "s3"
    assert query["endpoint"] == ["http://minio:9000"]
    assert query["path_style"] == ["true"]
    minio = services["minio"]["environment"]
    assert env["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
    assert env["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]

    for key in ("CELERY_BROKER_URL", "BERTH_CACHE_URL"):
        url = urlsplit(env[key])
        assert (url.scheme, url.hostname, url.port) == ("redis", "redis", 6379)
    assert env["CELERY_BROKER_URL"] != env["BERTH_CACHE_URL"]  # separate databases
    assert env["BERTH_SECRET_KEY"] == SECRETS["BERTH_SECRET_KEY"]


def test_compose_health_and_start_order(compose_config):
    services = compose_config["services"]
    web = services["web"]
    assert "/readyz" in " ".join(web["healthcheck"]["test"])
    assert web["ports"][0]["target"] == 5000
    for backend in ("postgres", "redis", "minio"):
        assert web["depends_on"][backend]["condition"] == "service_healthy"
        assert services[backend]["healthcheck"]["test"]
        assert services[backend]["volumes"], backend
    for role in ("worker", "scheduler"):
        # They start once web has migrated, and have no HTTP port to probe.
        assert services[role]["depends_on"]["web"]["condition"] == "service_healthy"
        assert services[role]["healthcheck"]["test"] == ["NONE"]  # disable: true


def test_compose_wiring_is_accepted_by_berth(compose_config, tmp_path):
    env = compose_config["services"]["web"]["environment"]
    settings = berth_settings({k: str(v) for k, v in env.items()}, tmp_path)
    assert settings["db"]["ENGINE"] == "django.db.backends.postgresql"
    assert (settings["db"]["HOST"], settings["db"]["NAME"]) == ("postgres", "berth")
    options = settings["blobs"]["OPTIONS"]
    assert settings["blobs"]["BACKEND"] == "registry.storage.s3.S3BlobStore"
    assert (options["bucket_name"], options["location"]) == ("berth", "registry")
    assert options["endpoint_url"] == "http://minio:9000"
    assert options["addressing_style"] == "path"
    assert options["create_bucket"] is True  # Berth makes the bucket in MinIO
    assert settings["broker"] == "redis://redis:6379/0"
    assert settings["secret_key"] == SECRETS["BERTH_SECRET_KEY"]


def test_compose_refuses_to_start_without_secrets(tmp_path):
    env_file = tmp_path / "partial.env"
    env_file.write_text(f"POSTGRES_PASSWORD={SECRETS['POSTGRES_PASSWORD']}\n")
    result = compose("config", env_file=env_file)
    assert result.returncode != 0
    assert "set MINIO_ROOT_PASSWORD in .env" in result.stderr + result.stdout


def test_compose_example_env_names_every_variable():
    text = (DEPLOY / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    example = (DEPLOY / "compose.env.example").read_text()
    named = set(re.findall(r"^([A-Z0-9_]+)=", example, re.MULTILINE))
    assert used == named


# --------------------------------------------------------------------------
# systemd
# --------------------------------------------------------------------------


@pytest.fixture
def systemd_root(tmp_path) -> Path:
    """A root for `systemd-analyze verify --root`: the units, systemd's own
    units, and the paths the units name (an executable stand-in for the venv's
    python, the source tree, the EnvironmentFile)."""
    root = tmp_path / "root"
    units = root / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    for unit in (DEPLOY / "systemd").glob("berth*"):
        if unit.suffix in (".service", ".target"):
            shutil.copy(unit, units)
    shutil.copytree(
        "/lib/systemd/system", root / "usr" / "lib" / "systemd" / "system", symlinks=True
    )
    python = root / "opt" / "berth" / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    (root / "opt" / "berth" / "app").mkdir(parents=True)
    (root / "etc" / "berth").mkdir(parents=True)
    (root / "etc" / "berth" / "berth.env").write_text(
        (DEPLOY / "systemd" / "berth.env.example").read_text()
    )
    return root


def verify(root: Path, *units: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", *units],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_systemd_units_verify_clean(systemd_root):
    result = verify(
        systemd_root, "berth@web.service", "berth@worker.service", "berth@scheduler.service",
        "berth.target",
    )  # fmt: skip
    # verify exits 0 on unknown keys too: any message is a failure.
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_systemd_verify_catches_a_broken_unit(systemd_root):
    unit = systemd_root / "etc" / "systemd" / "system" / "berth@.service"
    unit.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSystm=strict"))
    result = verify(systemd_root, "berth@web.service")
    assert "Unknown key 'ProtectSystm'" in result.stderr


def test_systemd_unit_runs_serve_hardened_and_drains():
    text = (DEPLOY / "systemd" / "berth@.service").read_text()
    keys: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            keys.setdefault(key, []).append(value)
    assert keys["ExecStart"] == [
        "/opt/berth/venv/bin/python /opt/berth/app/manage.py serve --role %i"
    ]
    assert keys["EnvironmentFile"] == ["/etc/berth/berth.env"]
    assert keys["User"] == ["berth"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "ReadWritePaths": "/var/lib/berth",
        "StateDirectory": "berth",
        "Restart": "on-failure",
        "KillSignal": "SIGTERM",
        "KillMode": "mixed",
        "CapabilityBoundingSet": "",
    }.items():
        assert keys[key] == [value], key
    # serve waits up to 20 s for its parts (registry/management/commands/serve.py).
    assert int(keys["TimeoutStopSec"][0]) > 20
    target = (DEPLOY / "systemd" / "berth.target").read_text()
    for role in BERTH_ROLES:
        assert f"berth@{role}.service" in target


# --------------------------------------------------------------------------
# Helm
# --------------------------------------------------------------------------


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    path = PEERS / "helm"
    assert path.is_file(), f"{path} missing: run tests/peers/build-go-peers.sh"
    return subprocess.run(
        [str(path), *args], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT
    )


def render(*sets: str) -> list[dict]:
    args = ["template", "reg", str(CHART), "--namespace", "registry"]
    for value in sets:
        args += ["--set", value]
    result = helm(*args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def objects(docs: list[dict], kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def container(deployment: dict) -> dict:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def resolved_env(container: dict, secret: dict | None) -> dict[str, str]:
    """The container's environment with secretKeyRefs read from the Secret."""
    env = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        assert secret is not None and ref["name"] == secret["metadata"]["name"]
        if ref["key"] in secret["stringData"]:
            env[item["name"]] = secret["stringData"][ref["key"]]
        else:
            assert ref.get("optional") is True, ref
    return env


def test_helm_lint_default_and_scaled():
    for args in ([], ["--set", "web.replicas=4,ingress.enabled=true,worker.replicas=3"]):
        result = helm("lint", "--strict", str(CHART), *args)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_helm_default_render_is_a_complete_bundled_berth(tmp_path):
    docs = render()
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds == sorted(
        ["Deployment"] * 3 + ["StatefulSet"] * 3 + ["Service"] * 4
        + ["Secret", "ServiceAccount", "PodDisruptionBudget"]
    )  # fmt: skip
    deployments = objects(docs, "Deployment")
    assert set(deployments) == {"reg-berth-web", "reg-berth-worker", "reg-berth-scheduler"}
    web = deployments["reg-berth-web"]
    assert web["spec"]["replicas"] == 2
    assert web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    web_container = container(web)
    assert web_container["args"] == ["serve", "--role", "web", "--addr", "0.0.0.0:5000"]
    assert web_container["ports"] == [{"name": "http", "containerPort": 5000}]
    assert web_container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    assert web_container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert web_container["startupProbe"]["httpGet"]["path"] == "/livez"
    for name, role in (("reg-berth-worker", "worker"), ("reg-berth-scheduler", "scheduler")):
        assert container(deployments[name])["args"] == ["serve", "--role", role]
    scheduler = deployments["reg-berth-scheduler"]
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"]["type"] == "Recreate"

    for deployment in deployments.values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["serviceAccountName"] == "reg-berth"
        assert pod["terminationGracePeriodSeconds"] > 20
        c = container(deployment)
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["resources"]["requests"]
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert {"/var/lib/berth", "/tmp"} <= mounts

    pdb = objects(docs, "PodDisruptionBudget")["reg-berth-web"]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == web["spec"]["selector"]["matchLabels"]
    service = objects(docs, "Service")["reg-berth-web"]
    assert service["spec"]["selector"] == web["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"

    # The wiring points at the bundled services, and Berth accepts it.
    secret = objects(docs, "Secret")["reg-berth"]
    env = resolved_env(web_container, secret)
    services = objects(docs, "Service")
    for url, port in ((env["DATABASE_URL"], 5432), (env["CELERY_BROKER_URL"], 6379),
                      (env["BERTH_CACHE_URL"], 6379)):  # fmt: skip
        host = urlsplit(url).hostname
        assert host in services and services[host]["spec"]["ports"][0]["port"] == port
    endpoint = urlsplit(parse_qs(urlsplit(env["BERTH_STORAGE_URL"]).query)["endpoint"][0])
    assert endpoint.hostname in services and endpoint.port == 9000
    assert urlsplit(env["DATABASE_URL"]).password == secret["stringData"]["POSTGRES_PASSWORD"]
    assert env["AWS_SECRET_ACCESS_KEY"] == secret["stringData"]["MINIO_ROOT_PASSWORD"]
    assert len(env["BERTH_SECRET_KEY"]) == 50
    settings = berth_settings(env, tmp_path)
    assert settings["db"]["HOST"] == "reg-berth-postgresql"
    assert settings["blobs"]["OPTIONS"]["endpoint_url"] == "http://reg-berth-minio:9000"
    assert settings["blobs"]["OPTIONS"]["addressing_style"] == "path"


def test_helm_scaled_render_with_external_backends(tmp_path):
    docs = render(
        "web.replicas=4",
        "worker.replicas=3",
        "web.podDisruptionBudget.minAvailable=2",
        "existingSecret=berth-prod",
        "database.url=unused-with-existing-secret",
        "storage.url=s3://prod-blobs/berth?region=eu-west-1",
        "postgresql.bundled=false",
        "minio.bundled=false",
        "redis.bundled=false",
        "ingress.enabled=true",
        "ingress.className=nginx",
        "ingress.hosts[0]=registry.example.com",
        "externalURL=https://registry.example.com",
        "trustedProxies=10.244.0.0/16",
        "image.repository=registry.example.com/berth/berth",
        "image.tag=1.2.3",
    )
    assert not objects(docs, "StatefulSet")
    assert not objects(docs, "Secret")  # existingSecret: the chart makes none
    deployments = objects(docs, "Deployment")
    assert deployments["reg-berth-web"]["spec"]["replicas"] == 4
    assert deployments["reg-berth-worker"]["spec"]["replicas"] == 3
    assert deployments["reg-berth-scheduler"]["spec"]["replicas"] == 1
    assert objects(docs, "PodDisruptionBudget")["reg-berth-web"]["spec"]["minAvailable"] == 2
    web = container(deployments["reg-berth-web"])
    assert web["image"] == "registry.example.com/berth/berth:1.2.3"
    refs = {
        item["name"]: item["valueFrom"]["secretKeyRef"]
        for item in web["env"]
        if "valueFrom" in item
    }
    assert {ref["name"] for ref in refs.values()} == {"berth-prod"}
    assert set(refs) == {
        "BERTH_SECRET_KEY", "BERTH_ADMIN_PASSWORD", "DATABASE_URL", "CELERY_BROKER_URL",
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "BERTH_CACHE_URL",
    }  # fmt: skip
    plain = {item["name"]: item["value"] for item in web["env"] if "value" in item}
    assert plain["BERTH_STORAGE_URL"] == "s3://prod-blobs/berth?region=eu-west-1"
    assert plain["BERTH_EXTERNAL_URL"] == "https://registry.example.com"
    assert plain["BERTH_TRUSTED_PROXIES"] == "10.244.0.0/16"
    (ingress,) = objects(docs, "Ingress").values()
    assert ingress["spec"]["ingressClassName"] == "nginx"
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "registry.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "reg-berth-web", "port": {"name": "http"}}
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "0"


def test_helm_refuses_external_mode_without_urls():
    result = helm("template", "reg", str(CHART), "--set", "postgresql.bundled=false")
    assert result.returncode != 0
    assert "database.url is required when postgresql.bundled is false" in result.stderr


def test_the_image_gets_every_app():
    """The image is built from what .dockerignore lets in: each of Berth's
    packages (the import-linter's root packages) must be there, or the image
    cannot start (a new app once was left out)."""
    import tomllib

    packages = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "root_packages"
    ]
    allowed = {
        line[1:].rstrip("/")
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    assert set(packages) <= allowed, sorted(set(packages) - allowed)
    assert {"templates", "locale", "manage.py"} <= allowed
