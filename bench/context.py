"""Run-wide settings: sizes of each profile, directories, logging."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO_ROOT / "bench"
TMP_DIR = BENCH_DIR / "tmp"  # git-ignored: installs, work directories, logs
BIN_DIR = TMP_DIR / "bin"

MiB = 1024 * 1024
GiB = 1024 * MiB

# Every number a workload uses comes from its profile. "full" is what issue 5
# asks for; "quick" is a shorter full run; "smoke" proves the harness works.
PROFILES: dict[str, dict[str, Any]] = {
    "full": {
        "blob_size": 1 * GiB,
        "chunk_size": 64 * MiB,
        "pull_repeats": 3,
        "wrk_seconds": 10,
        "wrk_connections": [1, 16, 64, 256],
        "docker_layers": 10,
        "docker_layer_size": 16 * MiB,
        "docker_pushes": 3,
        "docker_pulls": 3,
        "list_tags": 100_000,
        "list_repos": 100_000,
        "seed_threads": 16,
        "seed_budget": 120,  # seconds of seeding per data set, then measure what is there
        "list_checkpoints": [1000, 10_000, 100_000],
        "list_repeats": 3,
        "concurrent_pushes": 1000,
        "concurrent_budget": 240,
        "idle_settle": 5.0,
        "sha256_size": 1 * GiB,
        "portal_projects": 10_000,
        "portal_artifacts": 100_000,
        "portal_repeats": 20,
        # Replication (issue 17): images of layers, tags of the rerun, the big layer.
        "repl_images": 100,
        "repl_layers": 10,
        "repl_layer_size": 64 * 1024,
        "repl_tags": 1000,
        "repl_big_layer": 1 * GiB,
    },
    "quick": {
        "blob_size": 256 * MiB,
        "chunk_size": 32 * MiB,
        "pull_repeats": 3,
        "wrk_seconds": 3,
        "wrk_connections": [1, 16, 64, 256],
        "docker_layers": 10,
        "docker_layer_size": 2 * MiB,
        "docker_pushes": 3,
        "docker_pulls": 3,
        "list_tags": 10_000,
        "list_repos": 10_000,
        "seed_threads": 16,
        "seed_budget": 60,
        "list_checkpoints": [1000, 10_000],
        "list_repeats": 3,
        "concurrent_pushes": 200,
        "concurrent_budget": 180,
        "idle_settle": 3.0,
        "sha256_size": 256 * MiB,
        "portal_projects": 10_000,
        "portal_artifacts": 100_000,
        "portal_repeats": 10,
        # Replication (issue 17): images of layers, tags of the rerun, the big layer.
        "repl_images": 30,
        "repl_layers": 10,
        "repl_layer_size": 64 * 1024,
        "repl_tags": 200,
        "repl_big_layer": 256 * MiB,
    },
    "smoke": {
        "blob_size": 1 * MiB,
        "chunk_size": 256 * 1024,
        "pull_repeats": 2,
        "wrk_seconds": 1,
        "wrk_connections": [1, 16],
        "docker_layers": 10,
        "docker_layer_size": 16 * 1024,
        "docker_pushes": 2,
        "docker_pulls": 2,
        "list_tags": 100,
        "list_repos": 100,
        "seed_threads": 4,
        "seed_budget": 30,
        "list_checkpoints": [10, 100],
        "list_repeats": 1,
        "concurrent_pushes": 20,
        "concurrent_budget": 60,
        "idle_settle": 0.5,
        "sha256_size": 16 * MiB,
        "portal_projects": 200,
        "portal_artifacts": 1_000,
        "portal_repeats": 3,
        # Replication (issue 17): images of layers, tags of the rerun, the big layer.
        "repl_images": 3,
        "repl_layers": 10,
        "repl_layer_size": 4 * 1024,
        "repl_tags": 20,
        "repl_big_layer": 8 * MiB,
    },
}

WORKLOADS = [
    "startup",
    "blobs",
    "manifests",
    "concurrent",
    "concurrent_quota",
    "listing",
    "docker",
    "portal",
    "rss",
    "replication",
]


@dataclass
class Context:
    profile_name: str
    workdir: Path  # bench/tmp/run/<stamp>: data and logs of this run
    outdir: Path  # bench/results/<stamp>: the JSON results
    workloads: list[str]
    allow_install: bool = True
    berth_python: str = sys.executable
    quiet_wait_total: float = 0.0
    started: float = field(default_factory=time.monotonic)
    shared: dict[str, Any] = field(default_factory=dict)  # e.g. the blob file, dockerd

    @property
    def p(self) -> dict[str, Any]:
        return PROFILES[self.profile_name]

    def log(self, msg: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[bench {elapsed:7.1f}s] {msg}", file=sys.stderr, flush=True)
