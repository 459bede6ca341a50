"""nginx serving the benchmark's blob file: the physical limit for a blob pull."""

from __future__ import annotations

import shutil
from pathlib import Path

from bench import procs
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
