"""`kapal ps` on an eco app: the account's eco dyno hours first (as Heroku's CLI prints them),
and sleeping dynos shown `idle`."""

from __future__ import annotations

from tests.unit.cli.cli_fakeapi import EMAIL, FakeApi, Kapal, app_json


def dyno(name: str, state: str) -> dict[str, str]:
    return {
        "name": name,
        "type": name.split(".")[0],
        "state": state,
        "command": "gunicorn app:app",
        "size": "Eco",
        "updated_at": "2026-11-26T13:09:28Z",
    }


def test_ps_shows_the_eco_quota_and_an_idle_dyno(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo", app_json(process_tier="eco"))
    fake.on("GET", "/account", {"id": "u1", "email": EMAIL})
    used = 26 * 3600 + 48 * 60
    quota = {
        "account_quota": 3_600_000,
        "quota_used": used + 7200,
        "apps": [{"app_uuid": "id-demo", "quota_used": used}, {"app_uuid": "x", "quota_used": 1}],
    }
    fake.on("GET", "/accounts/~/actions/get-quota", quota)
    fake.on("GET", "/apps/demo/dynos", [dyno("web.1", "idle"), dyno("worker.1", "idle")])
    result = kapal("ps", "-a", "demo")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:4] == [
        "Eco dyno hours quota remaining this month: 971h 12m (97%)",
        "Eco dyno usage for this app: 26h 48m (2%)",
        "",
        "=== web (Eco): gunicorn app:app (1)",
    ]
    assert "web.1: idle 2026/11/26 13:09:28 +0000 (~ 30m ago)" in result.stdout
    assert "worker.1: idle" in result.stdout


def test_no_quota_for_other_tiers_or_apps_of_others(kapal: Kapal, fake: FakeApi) -> None:
    fake.on("GET", "/apps/demo/dynos", [dyno("web.1", "up")])
    fake.on("GET", "/account", {"id": "someone-else", "email": "x@example.com"})
    fake.on("GET", "/accounts/~/actions/get-quota", {"account_quota": 1})
    for app in (app_json(process_tier="basic"), app_json(process_tier="eco")):
        fake.on("GET", "/apps/demo", app)
        result = kapal("ps", "-a", "demo")
        assert result.exit_code == 0 and result.stdout.startswith("=== web"), result.output
    assert not fake.sent("GET", "/accounts/~/actions/get-quota")
