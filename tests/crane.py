"""crane (go-containerregistry's CLI, built by tests/peers/build-go-peers.sh),
logged in to one registry, and a one-file layer for it to push."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

from tests.s3 import PEERS


def crane_for(registry: str, creds: tuple[str, str] | str, workdir: Path) -> Callable[..., bytes]:
    """A function running ``crane --insecure ARGS`` with a docker config of its
    own (under ``workdir``) holding ``creds`` for ``registry``: a user name and
    password, or a registry (bearer) token used as it is. It asserts success
    (failure with ``ok=False``) and returns stdout (stderr on failure);
    ``stdin`` is what crane reads (``edit manifest``)."""
    crane = str(PEERS / "crane")
    assert os.path.isfile(crane), f"{crane} missing: run tests/peers/build-go-peers.sh"
    (workdir / "docker").mkdir()
    if isinstance(creds, str):
        entry = {"registrytoken": creds}
    else:
        entry = {"auth": base64.b64encode(":".join(creds).encode()).decode()}
    (workdir / "docker" / "config.json").write_text(json.dumps({"auths": {registry: entry}}))
    env = {**os.environ, "DOCKER_CONFIG": str(workdir / "docker")}

    def run(*args: str, ok: bool = True, stdin: bytes | None = None) -> bytes:
        result = subprocess.run(
            [crane, "--insecure", *args], input=stdin, env=env, capture_output=True, timeout=120
        )
        assert (result.returncode == 0) == ok, result.stderr.decode()
        return result.stdout if ok else result.stderr

    return run


def one_file_layer(path: Path, name: str, payload: bytes) -> Path:
    """A layer tarball holding ``payload`` as ``name``."""
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return path


def file_in_export(export: Path, name: str) -> bytes:
    """``name`` from a ``crane export`` tarball."""
    with tarfile.open(export) as tar:
        member = tar.extractfile(name)
        assert member is not None, f"{name} missing from {export}"
        return member.read()
