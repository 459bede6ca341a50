"""zot (and its load tool zb), built from the Go module proxy where it serves them.

The proxy reachable here is a filtering mirror: when it refuses the module
(403) the peer is recorded as unavailable with the proxy's answer.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import procs
from bench.context import BIN_DIR
from bench.peers.base import Peer, Unavailable, clean_env
from bench.peers.distribution import go_env, go_install

ZOT_MODULE = "zotregistry.dev/zot/v2"
ZOT_VERSION = "v2.1.8"
# Minimal build (no extensions), as zot's Makefile `binary-minimal` does.
ZOT_TAGS = "containers_image_openpgp"


def probe_module() -> None:
    """Ask the proxy for the pinned module; raise Unavailable with its answer if refused."""
    answers = []
    for query in (
        f"{ZOT_MODULE}@{ZOT_VERSION}",
        f"{ZOT_MODULE}@latest",
        "zotregistry.dev/zot@latest",
    ):
        r = procs.run(
            ["go", "mod", "download", "-json", query], env=go_env(), check=False, timeout=300
        )
        try:
            doc = json.loads(r.stdout or "{}")
        except ValueError:
            doc = {}
        if r.returncode == 0 and not doc.get("Error"):
            if query.startswith(f"{ZOT_MODULE}@{ZOT_VERSION}"):
                return
            answers.append(f"{query}: served, but not the pinned {ZOT_VERSION}")
            continue
        answers.append(f"{query}: {(doc.get('Error') or r.stderr).strip()[-200:]}")
    raise Unavailable("the Go module proxy refuses zot: " + " | ".join(answers))


def build_zb(ctx) -> Path:  # type: ignore[no-untyped-def]
    probe_module()
    return go_install(ctx, f"{ZOT_MODULE}/cmd/zb", ZOT_VERSION, "zb", "zb")


class Zot(Peer):
    name = "zot"
    title = f"zot {ZOT_VERSION} (minimal build)"
    settings_note = "filesystem storage, dedupe off, log level warn"

    def install(self) -> None:
        probe_module()
        self.binary = str(
            go_install(
                self.ctx,
                f"{ZOT_MODULE}/cmd/zot",
                ZOT_VERSION,
                "zot",
                "zot",
                tags=ZOT_TAGS,
            )
        )

    def version(self) -> str:
        return f"{ZOT_MODULE} {ZOT_VERSION}"

    @property
    def storage(self) -> Path:
        return self.workdir / "storage"

    def data_paths(self) -> list[Path]:
        return [self.storage]

    def prepare(self) -> None:
        super().prepare()
        self.storage.mkdir(parents=True, exist_ok=True)
        self.port = procs.free_port()
        config = {
            "distSpecVersion": "1.1.1",
            "storage": {"rootDirectory": str(self.storage), "dedupe": False, "gc": False},
            "http": {"address": "127.0.0.1", "port": str(self.port)},
            "log": {"level": "warn"},
        }
        (self.workdir / "config.json").write_text(json.dumps(config, indent=2))

    def launch(self) -> None:
        self.spawn(
            "zot",
            [BIN_DIR / "zot", "serve", self.workdir / "config.json"],
            env=clean_env(),
        )
