from kapal.router.routes import AppRoute, HostIndex, RouteTable

DEMO = AppRoute("a1", "demo")
TABLE = RouteTable.of(DEMO, AppRoute("a2", "other"))


def test_host_names_the_app_under_the_apps_domain() -> None:
    index = HostIndex(TABLE, "localhost")
    assert index.lookup(b"demo.localhost") is DEMO
    assert index.lookup(b"demo.localhost:8080") is DEMO
    assert index.lookup(b"DEMO.LocalHost") is DEMO
    assert index.lookup(b"demo.localhost.") is DEMO
    assert index.by_name("demo") is DEMO


def test_other_hosts_are_no_app() -> None:
    index = HostIndex(TABLE, "apps.example.com")
    assert index.lookup(b"demo.apps.example.com") is DEMO
    for host in (
        b"demo.localhost",
        b"localhost",
        b"apps.example.com",
        b"x.demo.apps.example.com",
        b"",
        b"[::1]:8080",
        b"nope.apps.example.com",
    ):
        assert index.lookup(host) is None
    assert index.by_name("nope") is None


def test_empty_table() -> None:
    assert HostIndex(RouteTable(), "localhost").lookup(b"demo.localhost") is None
