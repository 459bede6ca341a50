"""Drive real container clients against an OCI registry listening on loopback.

Test-support module (not a test file).  Everything here shells out to the real
tools that Debian 12 packages:

* ``dockerd`` (package ``docker.io``, 20.10) with the ``docker`` CLI,
* ``podman`` (4.3), ``skopeo`` (1.9), ``containerd``/``ctr`` (1.6),
* ``docker-registry`` (CNCF Distribution 2.8) as a reference registry.

Every daemon is started on private sockets / roots under a caller-supplied
temporary directory (plus a short directory in /tmp for unix sockets, whose
paths are limited to 107 bytes), so nothing touches the machine's global
container state and nothing collides with other test runs.  Every command has a
timeout; on failure a :class:`ClientError` carrying the tool's stderr is
raised; ``stop()`` methods terminate the daemon, wait for it, and kill any
stray processes (containerd, shims) that still reference the private paths.

Nothing is ever pulled from the internet: images are built ``FROM scratch``
from random local files, and multi-arch indexes are written as an OCI image
layout by hand (:func:`write_oci_layout`) and pushed with skopeo.

Typical use (pytest)::

    reg = "127.0.0.1:%d" % port            # the registry under test
    with DockerDaemon().start(tmp_path / "docker") as dockerd:
        image_id = build_scratch_image(dockerd, f"{reg}/t/app:1", tmp_path / "build")
        digest = dockerd.push(f"{reg}/t/app:1")
        dockerd.rmi(f"{reg}/t/app:1")
        assert dockerd.pull(f"{reg}/t/app:1") == image_id

How the clients reach a plain-HTTP registry on loopback (measured with
Distribution 2.8 behind a TCP proxy that classified connections):

* skopeo / podman with ``--tls-verify=false`` and dockerd (127.0.0.0/8 is
  insecure by default) always open ONE TLS connection first (``GET https://
  HOST/v2/``), per process invocation / per docker pull or push, then fall
  back to ``http://``.  Fallback happens whatever the plain-HTTP server does
  with the ClientHello: an HTTP 400 answer (Distribution, gunicorn, granian,
  nginx all do that at once), FIN or RST -> no measurable delay.  A server
  that reads the ClientHello and says nothing costs 10 s per invocation (Go's
  TLS handshake timeout), then the operation still succeeds over HTTP.
* With TLS verification on (the podman/skopeo default) there is no fallback:
  "http: server gave HTTP response to HTTPS client".
* ``ctr --plain-http`` goes straight to HTTP (no TLS attempt, no ``/v2/`` ping:
  its first request is ``HEAD /v2/<name>/manifests/<ref>``).
"""

from tests.clients.base import (
    ClientError,
    ClientTimeout,
    PulledImage,
    run_cmd,
    sha256_digest,
    tool_available,
)
from tests.clients.containerd import ContainerdDaemon
from tests.clients.distribution import DistributionRegistry
from tests.clients.docker import DockerDaemon, build_scratch_image
from tests.clients.oci_layout import (
    OciImage,
    OciLayout,
    push_multiarch_index,
    read_oci_layout,
    write_oci_layout,
)
from tests.clients.podman import Podman
from tests.clients.skopeo import Skopeo

__all__ = [
    "ClientError",
    "ClientTimeout",
    "ContainerdDaemon",
    "DistributionRegistry",
    "DockerDaemon",
    "OciImage",
    "OciLayout",
    "Podman",
    "PulledImage",
    "Skopeo",
    "build_scratch_image",
    "push_multiarch_index",
    "read_oci_layout",
    "run_cmd",
    "sha256_digest",
    "tool_available",
    "write_oci_layout",
]
