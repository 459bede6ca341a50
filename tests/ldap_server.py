"""A private OpenLDAP directory for tests: Debian's slapd (installed by
scripts/test-deps.sh with ``slapd/no_configuration``, so the package's own
directory never exists), on free loopback ports, with its own ``cn=config``
(``slapadd -n0``: back_mdb with the memberof and refint overlays, TLS with a
CA made here) and its own data:

- ``ou=people``: alice, bob, carol, dave, erin and ``clash`` (a Berth local
  user of that name exists in the tests that use it), passwords ``PASSWORDS``;
- ``ou=groups``: developers (alice), engineering (the developers *group* and
  erin: alice is in engineering only through nesting), berth-admins (carol),
  ops (bob);
- ``cn=reader``: the search DN (anonymous search is refused).

Groups are added through the running server, so the memberof overlay writes
the users' ``memberOf``. ``ldap_directory`` is a session fixture (tests must
not change the directory's contents); ``LDAPServer.add``/``modify`` are for
tests that do, on their own instance (``ldap_server(tmp_path)``).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import free_port, starting_a_server, wait_until

SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret"
READER_DN = f"cn=reader,{SUFFIX}"
READER_PASSWORD = "reader-secret"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
PASSWORDS = {
    "alice": "alice-pw-1",
    "bob": "bob-pw-1",
    "carol": "carol-pw-1",
    "dave": "dave-pw-1",
    "erin": "erin-pw-1",
    "clash": "clash-pw-1",
}
SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"


def user_dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def group_dn(cn: str) -> str:
    return f"cn={cn},{GROUPS}"


GROUP_MEMBERS = {
    "developers": [user_dn("alice")],
    "engineering": [group_dn("developers"), user_dn("erin")],
    "berth-admins": [user_dn("carol")],
    "ops": [user_dn("bob")],
}


def _ca_and_server_cert(directory: Path) -> tuple[str, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 / localhost it signed:
    (the CA's PEM, the key file, the certificate file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Berth test LDAP CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_file, cert_file = directory / "server.key", directory / "server.crt"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return ca.public_bytes(serialization.Encoding.PEM).decode(), key_file, cert_file


@dataclass
class LDAPServer:
    dir: Path
    port: int = 0
    tls_port: int = 0
    ca_pem: str = ""
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    def provider_config(self, **overrides: object) -> dict[str, object]:
        """An LDAP identity provider's settings for this directory (the search
        DN's password, READER_PASSWORD, is the provider's secret)."""
        return {
            "url": self.url,
            "search_dn": READER_DN,
            "base_dn": PEOPLE,
            "filter": "(objectClass=inetOrgPerson)",
            "uid": "uid",
            "group_base_dn": GROUPS,
            "group_filter": "(objectClass=groupOfNames)",
            "group_admin_dn": group_dn("berth-admins"),
            "timeout": 5,
            **overrides,
        }

    def _config_ldif(self, key: Path, cert: Path) -> str:
        d = self.dir
        return f"""dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {d}/slapd.pid
olcTLSCertificateFile: {cert}
olcTLSCertificateKeyFile: {key}

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
olcModuleLoad: memberof
olcModuleLoad: refint

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif

include: file:///etc/ldap/schema/cosine.ldif

include: file:///etc/ldap/schema/nis.ldif

include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {SUFFIX}
olcDbDirectory: {d}/data
olcDbMaxSize: 16777216
olcRootDN: {ROOT_DN}
olcRootPW: {ROOT_PASSWORD}
olcAccess: {{0}}to attrs=userPassword by anonymous auth by * none
olcAccess: {{1}}to * by users read by * none

dn: olcOverlay={{0}}memberof,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {{0}}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf

dn: olcOverlay={{1}}refint,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcRefintConfig
olcOverlay: {{1}}refint
olcRefintAttribute: member
olcRefintAttribute: memberOf
"""

    def _data_ldif(self) -> str:
        entries = [
            f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\n"
            "dc: example\no: Example",
            f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people",
            f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups",
            f"dn: {READER_DN}\nobjectClass: organizationalRole\n"
            f"objectClass: simpleSecurityObject\ncn: reader\nuserPassword: {READER_PASSWORD}",
        ]
        for uid, password in PASSWORDS.items():
            entries.append(
                f"dn: {user_dn(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
                f"cn: {uid.title()} Example\nsn: Example\nmail: {uid}@example.org\n"
                f"userPassword: {password}"
            )
        return "\n\n".join(entries) + "\n"

    def start(self) -> LDAPServer:
        starting_a_server("slapd")
        if self.proc is None and not (self.dir / "slapd.d").exists():
            (self.dir / "slapd.d").mkdir(parents=True)
            (self.dir / "data").mkdir()
            self.ca_pem, key, cert = _ca_and_server_cert(self.dir)
            (self.dir / "config.ldif").write_text(self._config_ldif(key, cert))
            (self.dir / "data.ldif").write_text(self._data_ldif())
            subprocess.run(
                [
                    SLAPADD,
                    "-n0",
                    "-F",
                    str(self.dir / "slapd.d"),
                    "-l",
                    str(self.dir / "config.ldif"),
                ],
                check=True,
                capture_output=True,
            )
            subprocess.run(
                [
                    SLAPADD,
                    "-n1",
                    "-F",
                    str(self.dir / "slapd.d"),
                    "-l",
                    str(self.dir / "data.ldif"),
                ],
                check=True,
                capture_output=True,
            )
            fresh = True
        else:
            fresh = False
        self.port = self.port or free_port()
        self.tls_port = self.tls_port or free_port()
        with open(self.dir / "slapd.log", "ab") as log:
            self.proc = self._popen(log)
        wait_until(self._answers, timeout=30, what=lambda: (self.dir / "slapd.log").read_text())
        if fresh:
            for cn, members in GROUP_MEMBERS.items():
                self.add(
                    group_dn(cn),
                    {"objectClass": ["groupOfNames"], "cn": [cn], "member": members},
                )
        return self

    def _popen(self, log: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                SLAPD,
                "-d",
                "0",
                "-F",
                str(self.dir / "slapd.d"),
                "-h",
                f"ldap://127.0.0.1:{self.port}/ ldaps://127.0.0.1:{self.tls_port}/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _answers(self) -> bool:
        import ldap

        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError((self.dir / "slapd.log").read_text()[-3000:])
        try:
            self.connection().unbind_s()
        except ldap.LDAPError:
            return False
        return True

    def connection(self):  # type: ignore[no-untyped-def]
        """A connection bound as the directory's root."""
        import ldap

        conn = ldap.initialize(self.url)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, 5)
        conn.simple_bind_s(ROOT_DN, ROOT_PASSWORD)
        return conn

    def add(self, dn: str, attrs: dict[str, list[str]]) -> None:
        from ldap import modlist

        conn = self.connection()
        try:
            conn.add_s(
                dn, modlist.addModlist({k: [v.encode() for v in vs] for k, vs in attrs.items()})
            )
        finally:
            conn.unbind_s()

    def modify(self, dn: str, changes: list[tuple[int, str, list[str]]]) -> None:
        conn = self.connection()
        try:
            conn.modify_s(dn, [(op, attr, [v.encode() for v in vs]) for op, attr, vs in changes])
        finally:
            conn.unbind_s()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


@contextmanager
def ldap_server(directory: Path) -> Iterator[LDAPServer]:
    if not shutil.which(SLAPD) and not os.path.exists(SLAPD):
        raise RuntimeError("slapd missing: run scripts/test-deps.sh")
    server = LDAPServer(directory)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def ldap_directory(tmp_path_factory) -> Iterator[LDAPServer]:
    """One directory for the run (read-only for the tests that share it)."""
    with ldap_server(tmp_path_factory.mktemp("slapd")) as server:
        yield server
