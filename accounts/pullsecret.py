"""A Kubernetes image-pull Secret for a robot (``kubernetes.io/dockerconfigjson``).

Written by hand: the document is five fields of a stable, documented shape
(kubernetes.io/docs/concepts/configuration/secret/#docker-config-secrets), and
the Kubernetes client library (tens of megabytes of generated models) would be
a dependency for one ``dict``. PyYAML, already a dependency, writes it."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import yaml

# A namespace is a DNS-1123 label (what ``kubectl create namespace`` accepts).
NAMESPACE_RE = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")


def valid_namespace(namespace: str) -> bool:
    return bool(NAMESPACE_RE.fullmatch(namespace))


def secret_name(robot_name: str) -> str:
    """``robot$team+ci`` → ``robot-team-ci``: a DNS-1123 subdomain."""
    return re.sub(r"[^a-z0-9.-]+", "-", robot_name.lower()).strip("-.")[:253] or "berth-robot"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def pull_secret(*, host: str, username: str, password: str, namespace: str) -> dict[str, Any]:
    """The Secret ``kubectl apply -f`` creates: the registry ``host``'s
    credentials in the ``.dockerconfigjson`` docker and Kubernetes read."""
    config = {
        "auths": {
            host: {
                "username": username,
                "password": password,
                "auth": _b64(f"{username}:{password}"),
            }
        }
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret_name(username), "namespace": namespace},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": _b64(json.dumps(config, separators=(",", ":")))},
    }


def pull_secret_yaml(**kwargs: str) -> str:
    return yaml.safe_dump(pull_secret(**kwargs), sort_keys=False)
