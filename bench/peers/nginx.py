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
        wd = self.workdir
        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (wd / d).mkdir(exist_ok=True)
        conf = f"""
worker_processes auto;
daemon off;
user root;
pid {wd}/nginx.pid;
error_log {wd}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  client_body_temp_path {wd}/body;
  proxy_temp_path {wd}/proxy;
  fastcgi_temp_path {wd}/fastcgi;
  uwsgi_temp_path {wd}/uwsgi;
  scgi_temp_path {wd}/scgi;
  server {{
    listen 127.0.0.1:{self.port};
    root {self.root};
  }}
}}
"""
        (wd / "nginx.conf").write_text(conf)

    def launch(self) -> None:
        self.spawn(
            "nginx",
            ["nginx", "-p", self.workdir, "-c", self.workdir / "nginx.conf"],
            env=clean_env(),
        )


NGINX_TEMPS = ("body", "proxy", "fastcgi", "uwsgi", "scgi")


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
    for d in NGINX_TEMPS:
        (workdir / d).mkdir(parents=True, exist_ok=True)
    temps = "\n".join(f"  {d}_temp_path {workdir}/{d};" for d in NGINX_TEMPS if d != "body")
    return f"""daemon off;
worker_processes auto;
user root;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {workdir}/body;
{temps}
{text}
}}
"""
