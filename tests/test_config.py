"""Settings: defaults, TOML file, environment variables, errors naming the culprit."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from clicktrail.config import Settings, load_settings, setting_help
from clicktrail.domain.errors import InvalidInput


@pytest.fixture(autouse=True)
def _no_local_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # load_settings reads ./clicktrail.toml when it exists: run from an empty folder.
    monkeypatch.chdir(tmp_path)


def write_toml(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "conf.toml"
    path.write_text(text, encoding="utf-8")
    return {"CLICKTRAIL_CONFIG": str(path)}


def test_defaults() -> None:
    s = load_settings(env={})
    assert s == Settings()
    assert s.port == 8787
    assert s.host == "127.0.0.1"
    assert s.access_log is False
    assert s.click_flush_interval == 0.05
    assert s.resolved_database_url == f"sqlite:///{Path('var') / 'clicktrail.db'}"
    assert s.resolved_spool_dir == Path("var") / "spool"
    assert s.resolved_outbox_path == Path("var") / "outbox.jsonl"


def test_every_setting_has_help() -> None:
    for name, (_kind, _default, text) in setting_help().items():
        assert text.strip(), name


def test_environment_variables_override_defaults_with_types() -> None:
    s = load_settings(
        env={
            "CLICKTRAIL_PORT": "9000",
            "CLICKTRAIL_ACCESS_LOG": "yes",
            "CLICKTRAIL_CLICK_FLUSH_INTERVAL": "0.5",
            "CLICKTRAIL_DATA_DIR": "/srv/ct",
            "CLICKTRAIL_DEFAULT_REGION": "GB",
        }
    )
    assert (s.port, s.access_log, s.click_flush_interval) == (9000, True, 0.5)
    assert s.default_region == "GB"
    assert s.resolved_database_url == "sqlite:////srv/ct/clicktrail.db"
    assert s.resolved_spool_dir == Path("/srv/ct/spool")


@pytest.mark.parametrize(("raw", "value"), [("0", False), ("off", False), ("TRUE", True)])
def test_boolean_spellings(raw: str, value: bool) -> None:
    assert load_settings(env={"CLICKTRAIL_ACCESS_LOG": raw}).access_log is value


@pytest.mark.parametrize("table", ["", "[clicktrail]\n"])
def test_toml_file_top_level_or_under_clicktrail(tmp_path: Path, table: str) -> None:
    env = write_toml(tmp_path, f'{table}port = 9100\nhost = "0.0.0.0"\naccess_log = true\n')
    s = load_settings(env=env)
    assert (s.port, s.host, s.access_log) == (9100, "0.0.0.0", True)


def test_environment_beats_toml_and_overrides_beat_both(tmp_path: Path) -> None:
    env = write_toml(tmp_path, "port = 9100\ntoken_cache_size = 10\n")
    env["CLICKTRAIL_PORT"] = "9200"
    s = load_settings(env=env)
    assert (s.port, s.token_cache_size) == (9200, 10)
    assert load_settings(env=env, overrides={"port": 9300, "host": None}).port == 9300


def test_clicktrail_toml_in_the_working_folder_is_read(tmp_path: Path) -> None:
    (tmp_path / "clicktrail.toml").write_text("port = 9400\n", encoding="utf-8")
    assert load_settings(env={}).port == 9400


def test_unknown_key_in_toml_names_the_key(tmp_path: Path) -> None:
    env = write_toml(tmp_path, "[clicktrail]\nprot = 1\n")
    with pytest.raises(InvalidInput, match="'prot'") as info:
        load_settings(env=env)
    assert info.value.field == "prot"
    assert "conf.toml" in info.value.message


def test_bad_type_in_toml_names_the_key(tmp_path: Path) -> None:
    env = write_toml(tmp_path, 'port = "eighty"\n')
    with pytest.raises(InvalidInput, match=r"port must be a int, got 'eighty'") as info:
        load_settings(env=env)
    assert info.value.field == "port"


def test_bool_is_not_accepted_as_int_in_toml(tmp_path: Path) -> None:
    env = write_toml(tmp_path, "port = true\n")
    with pytest.raises(InvalidInput, match="port"):
        load_settings(env=env)


@pytest.mark.parametrize(
    ("var", "raw"),
    [
        ("CLICKTRAIL_PORT", "80a"),
        ("CLICKTRAIL_ACCESS_LOG", "maybe"),
        ("CLICKTRAIL_CLICK_FLUSH_INTERVAL", "soon"),
    ],
)
def test_bad_environment_value_names_the_variable(var: str, raw: str) -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings(env={var: raw})
    assert var in info.value.message
    assert repr(raw) in info.value.message


def test_missing_config_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist") as info:
        load_settings(env={"CLICKTRAIL_CONFIG": str(tmp_path / "nope.toml")})
    assert info.value.field == "CLICKTRAIL_CONFIG"


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    env = write_toml(tmp_path, "port = = 1\n")
    with pytest.raises(InvalidInput, match=r"conf\.toml"):
        load_settings(env=env)


@pytest.mark.parametrize(
    ("url", "resolved"),
    [
        ("postgresql://u@db:5432/ct", "postgresql+psycopg://u@db:5432/ct"),
        ("postgres://u:p@db/ct", "postgresql+psycopg://u:p@db/ct"),
        ("postgresql+psycopg://u@db/ct", "postgresql+psycopg://u@db/ct"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_resolved_database_url_selects_psycopg(url: str, resolved: str) -> None:
    s = load_settings(env={"CLICKTRAIL_DATABASE_URL": url})
    assert s.resolved_database_url == resolved


def test_explicit_spool_and_outbox_paths_win_over_data_dir() -> None:
    s = load_settings(
        env={
            "CLICKTRAIL_DATA_DIR": "/d",
            "CLICKTRAIL_SPOOL_DIR": "/s",
            "CLICKTRAIL_OUTBOX_PATH": "/o.jsonl",
        }
    )
    assert s.resolved_spool_dir == Path("/s")
    assert s.resolved_outbox_path == Path("/o.jsonl")


def test_float_for_an_int_setting_is_rejected(tmp_path: Path) -> None:
    env = write_toml(tmp_path, "port = 8080.9\n")
    with pytest.raises(InvalidInput, match="port"):
        load_settings(env=env)


def test_top_level_keys_beside_a_clicktrail_table_are_not_silently_ignored(
    tmp_path: Path,
) -> None:
    env = write_toml(tmp_path, "port = 9100\n[clicktrail]\nhost = '0.0.0.0'\n")
    with pytest.raises(InvalidInput, match="port"):
        load_settings(env=env)


def test_jobs_cpus_is_a_cpu_list() -> None:
    assert load_settings(env={}).jobs_cpu_set() is None
    assert load_settings(env={"CLICKTRAIL_JOBS_CPUS": "0"}).jobs_cpu_set() == {0}
    last = (os.cpu_count() or 1) - 1
    both = load_settings(env={"CLICKTRAIL_JOBS_CPUS": f"0-{last}, {last}"}).jobs_cpu_set()
    assert both == set(range(last + 1))


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("x", "'x' is not a CPU number or range"),
        ("1-", "'1-' is not a CPU number or range"),
        ("-1", "'-1' is not a CPU number or range"),
        ("0,,1", "'' is not a CPU number or range"),
        ("3-1", "range '3-1' runs backwards"),
        ("4096", "CPU 4096 does not exist"),
    ],
)
def test_a_bad_jobs_cpus_names_the_setting(value: str, says: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        load_settings(env={"CLICKTRAIL_JOBS_CPUS": value}).jobs_cpu_set()
    assert exc.value.field == "jobs_cpus"
    assert says in str(exc.value) and str(exc.value).startswith("jobs_cpus: ")


# -- where the data folder is -------------------------------------------------------------------


def _project(root: Path, marker: str) -> Path:
    """A project folder holding `marker` (clicktrail.toml or var/clicktrail.db), with a
    subfolder `a/b` to run commands from."""
    (root / marker).parent.mkdir(parents=True, exist_ok=True)
    (root / marker).write_text("", encoding="utf-8")
    (root / "a" / "b").mkdir(parents=True)
    return root / "a" / "b"


def test_a_subfolder_of_a_project_opens_the_projects_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(_project(tmp_path / "proj", "var/clicktrail.db"))
    s = load_settings(env={})
    assert Path(s.data_dir) == tmp_path / "proj" / "var"
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'proj' / 'var' / 'clicktrail.db'}"
    assert s.resolved_outbox_path == tmp_path / "proj" / "var" / "outbox.jsonl"


def test_the_nearest_clicktrail_toml_up_the_tree_is_read_and_places_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = _project(tmp_path / "proj", "clicktrail.toml")
    (tmp_path / "proj" / "clicktrail.toml").write_text('port = 9500\ndata_dir = "data"\n')
    monkeypatch.chdir(sub)
    s = load_settings(env={})
    assert s.port == 9500
    assert Path(s.data_dir) == tmp_path / "proj" / "data"
    # Without data_dir in the file, the default `var` is beside the file too.
    (tmp_path / "proj" / "clicktrail.toml").write_text("port = 9500\n")
    assert Path(load_settings(env={}).data_dir) == tmp_path / "proj" / "var"


def test_a_relative_data_dir_in_a_named_config_file_is_beside_that_file(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    env = {"CLICKTRAIL_CONFIG": str(tmp_path / "etc" / "ct.toml")}
    (tmp_path / "etc" / "ct.toml").write_text('data_dir = "state"\n')
    assert Path(load_settings(env=env).data_dir) == tmp_path / "etc" / "state"
    (tmp_path / "etc" / "ct.toml").write_text('data_dir = "/srv/ct"\n')
    assert load_settings(env=env).data_dir == "/srv/ct"


def test_data_dir_from_the_environment_or_an_option_is_taken_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(_project(tmp_path / "proj", "var/clicktrail.db"))
    assert load_settings(env={"CLICKTRAIL_DATA_DIR": "mine"}).data_dir == "mine"
    assert load_settings(env={}, overrides={"data_dir": "opt"}).data_dir == "opt"


def test_outside_any_project_data_dir_is_var_in_the_current_folder() -> None:
    s = load_settings(env={})
    assert s.data_dir == "var"
    assert s.database_label == str(Path.cwd() / "var" / "clicktrail.db")


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("postgresql://ct:s3cret@db:5432/ct", "postgresql+psycopg://ct:***@db:5432/ct"),
        ("postgresql://ct@db/ct", "postgresql+psycopg://ct@db/ct"),
        ("postgresql://ct:p@ss:w@rd@db/ct", "postgresql+psycopg://ct:***@db/ct"),
        ("sqlite:////srv/ct/x.db", "/srv/ct/x.db"),
    ],
)
def test_database_label_masks_the_password(url: str, label: str) -> None:
    assert load_settings(env={"CLICKTRAIL_DATABASE_URL": url}).database_label == label
