"""`kapal addons:attach` and `addons:detach` against the fake API."""

from __future__ import annotations

from tests.unit.cli.cli_fakeapi import FakeApi, Kapal, body


def attachment(name: str) -> dict[str, object]:
    return {
        "id": "att-1",
        "name": name,
        "app": {"id": "a2", "name": "reports"},
        "addon": {"id": "ad-1", "name": "postgresql-calm-12345", "app": {"name": "demo"}},
    }


def test_attach_sends_the_addon_app_and_name(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("POST", "/addon-attachments", attachment("SHARED"), status=201)
    result = kapal("addons:attach", "postgresql-calm-12345", "--as", "SHARED", "-a", "reports")
    assert result.exit_code == 0, result.output
    assert body(fake.one("POST", "/addon-attachments")) == {
        "addon": "postgresql-calm-12345",
        "app": "reports",
        "name": "SHARED",
    }
    assert "Attaching postgresql-calm-12345 to ⬢ reports... done" in result.stderr
    assert "SHARED_URL is set" in result.stdout


def test_detach_finds_the_attachment_by_name_then_deletes_it(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/reports/addon-attachments/SHARED_URL", attachment("SHARED"))
    fake.on("DELETE", "/addon-attachments/att-1", attachment("SHARED"))
    result = kapal("addons:detach", "SHARED_URL", "-a", "reports")
    assert result.exit_code == 0, result.output
    assert "SHARED_URL is unset" in result.stdout
    assert fake.one("DELETE", "/addon-attachments/att-1")


def test_detaching_the_last_attachment_shows_why_not(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/addon-attachments/DATABASE", attachment("DATABASE"))
    fake.error(
        "DELETE", "/addon-attachments/att-1", 422, "invalid_params", "destroy the add-on instead"
    )
    result = kapal("addons:detach", "DATABASE", "-a", "demo")
    assert result.exit_code == 1
    assert "destroy the add-on instead" in result.output
