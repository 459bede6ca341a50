"""nginx serving the benchmark's blob file: the physical limit for a blob pull."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from bench import procs
from bench.context import REPO_ROOT
from bench.peers.base import Peer, apt_install, clean_env, deb_version


class Nginx(Peer):
    name = "nginx"
    title = "nginx (static file, sendfile on)"
    kind = "limit"
    settings_note = "worker_processes auto, sendfile on, access log off"

    def install(self) -> None:
        if not shutil.which("nginx"):
            apt_install(self.ctx, "nginx-light")

    def version(self) -> str:
        for pkg in ("nginx", "nginx-light", "nginx-core"):
            v = deb_version(pkg)
            if v != "?":
                return f"nginx {v}"
        return "?"

    def serve(self, root: Path) -> None:
        self.root = root

    def prepare(self) -> None:
        super().prepare()
        self.port = procs.free_port()
        site = f"""  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  server {{
    listen 127.0.0.1:{self.port};
    root {self.root};
  }}"""
        (self.workdir / "nginx.conf").write_text(nginx_conf(self.workdir, site))

    def launch(self) -> None:
        self.spawn(
            "nginx",
            ["nginx", "-p", self.workdir, "-c", self.workdir / "nginx.conf"],
            env=clean_env(),
        )


def nginx_conf(workdir: Path, http_body: str) -> str:
    """A private nginx (foreground, its pid, logs and temporary files under
    ``workdir``) whose http block holds ``http_body``."""
    temps = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    for name in temps:
        (workdir / name).mkdir(parents=True, exist_ok=True)
    paths = "\n".join(f"  {name}_temp_path {workdir}/{name};" for name in temps)
    return f"""daemon off;
worker_processes auto;
user root;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
# A proxied client takes two connections (client and upstream): room for the
# 1,000 concurrent pushes through the Berth front (docs/deploy.md).
events {{ worker_connections 4096; }}
http {{
  access_log off;
{paths}
{http_body}
}}
"""


def front_config(workdir: Path, berth_addr: str, listen: str, blobs_dir: Path) -> str:
    """An nginx.conf around Berth's shipped deploy/nginx/berth.conf, its three
    marked values replaced (Berth's address, the listen address, the blobs
    directory). Used by the berth-nginx peer and tests/test_nginx_front.py."""
    text = (REPO_ROOT / "deploy" / "nginx" / "berth.conf").read_text()
    text, n1 = re.subn(r"server 127\.0\.0\.1:8080;", f"server {berth_addr};", text)
    text, n2 = re.subn(r"listen 80;", f"listen {listen};", text)
    text, n3 = re.subn(r"alias /var/lib/berth/registry/blobs/;", f"alias {blobs_dir}/;", text)
    if (n1, n2, n3) != (1, 1, 1):
        raise RuntimeError("deploy/nginx/berth.conf no longer has its three marked values")
    return nginx_conf(workdir, text)
