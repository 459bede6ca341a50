"""A copy in a process of its own, for its peak RSS: ``python -m
tests.replication.copy_probe SRC_URL SRC_USER SRC_PASS DST_URL DST_USER DST_PASS
SRC_REPO DST_REPO DIGEST SIZE CHUNK`` prints {"maxrss_kib", "bytes"} as JSON.

The peak is sampled from /proc/self/status (VmRSS) while the copy runs:
getrusage's high-water mark is inherited from the forking parent (pytest)."""

from __future__ import annotations

import json
import os
import sys
import threading

import django


def main(argv: list[str]) -> None:
    # The guarded outbound client reads its network policy from the settings.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    from replication.adapters.http import Auth
    from replication.adapters.registry import RegistryAdapter
    from replication.engine import Copier

    src_url, src_user, src_pass, dst_url, dst_user, dst_pass = argv[:6]
    src_repo, dst_repo, digest, size, chunk = argv[6:11]
    before = _rss_kib()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], _rss_kib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    copier = Copier(
        src=RegistryAdapter(src_url, auth=Auth(src_user, src_pass)),
        dst=RegistryAdapter(dst_url, auth=Auth(dst_user, dst_pass)),
        log=lambda line: None,
        chunk=int(chunk),
    )
    copier.blob(src_repo, dst_repo, digest, int(size))
    done.set()
    sampler.join()
    peak[0] = max(peak[0], _rss_kib())
    print(json.dumps({"maxrss_kib": peak[0], "before_kib": before, "bytes": copier.bytes_copied}))


def _rss_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


if __name__ == "__main__":
    main(sys.argv[1:])
