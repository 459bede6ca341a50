"""English and Simplified Chinese: every string Berth marks for translation has
a zh-Hans entry, the committed .mo files are compiled from the .po files, and
the portal answers in the browser's language or the one chosen on the page."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.test import Client

from accounts.models import User

REPO = Path(__file__).resolve().parents[2]
PO = REPO / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
SOURCES = ("kit", "audit", "accounts", "registry", "portal", "templates", "locale")


def extracted(tmp_path: Path) -> polib.POFile:
    """Berth's catalogue as ``makemessages`` would make it now, merged with the
    committed translations, made in a copy of the sources (the checkout is left
    alone)."""
    for tool in ("xgettext", "msgmerge"):
        assert shutil.which(tool), f"{tool} missing: install gettext (scripts/test-deps.sh)"
    for name in SOURCES:
        shutil.copytree(
            REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "*.mo")
        )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-l", "zh_Hans", "--no-location"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return polib.pofile(str(tmp_path / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"))


def test_every_berth_string_has_a_chinese_entry(tmp_path):
    catalogue = extracted(tmp_path)
    assert len(catalogue) > 20  # the extraction found Berth's strings
    missing = [e.msgid for e in catalogue.untranslated_entries()]
    guessed = [e.msgid for e in catalogue.fuzzy_entries()]
    assert missing == [], "no zh-Hans entry: run `make messages` and translate them"
    assert guessed == [], "msgmerge's guesses (fuzzy): check and unmark them"


def test_committed_mo_files_are_compiled_from_the_po_files():
    po = polib.pofile(str(PO))
    mo = polib.mofile(str(PO.with_suffix(".mo")))
    assert {e.msgid: e.msgstr for e in mo if e.msgid} == {
        e.msgid: e.msgstr for e in po.translated_entries()
    }, "the .mo is stale: run `make messages`"


@pytest.mark.django_db(transaction=True)
def test_the_browsers_language_chooses_the_portal_language(team):
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    client.force_login(User.objects.get(username="dev"))
    page = client.get("/").content.decode()
    assert '<html lang="zh-hans"' in page
    assert "我的项目" in page  # Berth's own string
    assert "注销" in page  # Django's admin's own ("Log out")
    english = Client(HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    english.force_login(User.objects.get(username="dev"))
    assert "My projects" in english.get("/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_language_switch_on_every_page(team):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    assert 'id="berth-language"' in client.get("/").content.decode()  # sign-in too
    client.force_login(User.objects.get(username="dev"))
    r = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert r.status_code == 302
    assert "我的项目" in client.get("/").content.decode()
    assert "项目" in client.get("/admin/accounts/project/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_api_and_the_registry_answer_in_english_whatever_the_client_asks(team):
    """Harbor's API answers in English: neither Accept-Language nor the portal's
    language cookie turns an API or registry error into Chinese (DRF ships a
    zh-Hans catalogue: the 405 below read “方法 “DELETE” 不被允许。”)."""
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    r = client.delete("/api/v2.0/health")
    assert r.status_code == 405
    assert r.json()["errors"][0]["message"] == 'Method "DELETE" not allowed.'
    assert "Content-Language" not in r.headers
    r = client.get("/v2/team-a/nothing/manifests/latest")
    assert r.status_code == 401
    assert r.json()["errors"][0]["message"].isascii()
    # The portal still answers in the browser's language.
    assert '<html lang="zh-hans"' in client.get("/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_app_and_model_names_are_translated(team):
    """The admin's index and changelists name Berth's apps and models in
    Chinese (their verbose names are marked for translation)."""
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-CN")
    client.force_login(User.objects.get(pk=1))
    index = client.get("/admin/").content.decode()
    names = ("身份与访问", "镜像仓库服务", "审计日志", "项目", "用户", "系统设置", "不可变标签规则")
    for name in names:
        assert name in index, name
    for english in ("Identity and access", "Audit trail", "Immutable rules", "System settings"):
        assert english not in index, english
    assert "<title>选择标签查看 |" in client.get("/admin/registry/tag/").content.decode()
