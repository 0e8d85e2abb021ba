from pathlib import Path

import pytest

from kapal.addons.catalog import POSTGRESQL
from kapal.addons.errors import ClusterError, ProvisionError
from kapal.addons.postgres import PostgresProvisioner
from kapal.addons.postgres_cluster import ManagedCluster, conf_value, find_bin_dir
from kapal.addons.provider import provisioner_for
from kapal.settings import Settings


def make_bin(root: Path, version: str) -> Path:
    bin_dir = root / version / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "initdb").touch()
    return bin_dir


def test_newest_major_version_wins_numerically(tmp_path: Path) -> None:
    make_bin(tmp_path, "9")
    newest = make_bin(tmp_path, "15")
    make_bin(tmp_path, "13")
    (tmp_path / "16" / "bin").mkdir(parents=True)  # no initdb: a client-only install
    assert find_bin_dir(tmp_path) == newest


def test_missing_binaries_say_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="apt-get install postgresql"):
        find_bin_dir(tmp_path / "nothing-here")


def test_conf_values_are_quoted() -> None:
    assert conf_value("/a b/it's") == "'/a b/it''s'"
    assert conf_value("back\\slash") == "'back\\\\slash'"


def test_places_follow_settings(tmp_path: Path) -> None:
    cluster = ManagedCluster(Settings(data_dir=tmp_path, postgres_port=15999))
    assert cluster.data_dir == tmp_path / "postgres" / "data"
    assert cluster.password_file == tmp_path / "secrets" / "postgres-admin"


def test_admin_url_reads_the_secret(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, postgres_port=15999)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "postgres-admin").write_text("s3cr/t\n")
    url = ManagedCluster(settings).admin_url()
    assert url == "postgresql://postgres:s3cr%2Ft@127.0.0.1:15999/postgres"


def test_without_a_cluster_provisioning_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ProvisionError, match="has not been set up"):
        provisioner_for(Settings(data_dir=tmp_path), POSTGRESQL)


def test_an_external_server_is_used_as_given(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, postgres_admin_url="postgresql://postgres@db.internal:6543/postgres"
    )
    provisioner = provisioner_for(settings, POSTGRESQL)
    assert isinstance(provisioner, PostgresProvisioner)
    assert (provisioner.public_host, provisioner.public_port) == ("db.internal", 6543)
