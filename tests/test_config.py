from pathlib import Path

import pytest

from medreason_dist.config import ConfigError, load_config, resolve_packaged

REPO = Path(__file__).resolve().parent.parent


def test_local_default_loads_and_points_at_packaged_data():
    cfg = load_config(REPO / "conf" / "local.yaml")
    assert cfg.spark.master.startswith("local")
    assert cfg.run.out == "./out"
    for spec in cfg.sources + cfg.eval_sets:
        assert Path(resolve_packaged(spec.path)).is_file(), spec.path


@pytest.mark.parametrize("name", ["aws.yaml", "gcp.yaml"])
def test_cluster_configs_validate_and_hold_no_credentials(name):
    path = REPO / "conf" / name
    cfg = load_config(path)
    assert cfg.run.out.startswith(("s3://", "gs://"))
    text = path.read_text().lower()
    for word in ("aws_secret", "secret_access_key", "private_key", "password"):
        assert word not in text


def test_unknown_key_in_file_is_named_with_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("spark:\n  mastr: local[1]\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert "spark.mastr" in str(err.value) and str(bad) in str(err.value)


def test_ill_typed_key_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("paths:\n  max_hops: three\n")
    with pytest.raises(ConfigError, match=r"paths\.max_hops"):
        load_config(bad)


def test_set_overrides_nested_keys_and_lists():
    cfg = load_config(REPO / "conf" / "local.yaml",
                      ["spark.master=local[1]", "paths.max_paths=7", "sources.0.limit=3", "ray.num_cpus=1"])
    assert cfg.spark.master == "local[1]"
    assert cfg.paths.max_paths == 7
    assert cfg.sources[0].limit == 3


def test_set_errors_name_the_key_and_say_set():
    with pytest.raises(ConfigError) as err:
        load_config(REPO / "conf" / "local.yaml", ["spark.nope=1"])
    assert "--set" in str(err.value) and "spark.nope" in str(err.value)
    with pytest.raises(ConfigError, match="key=value"):
        load_config(REPO / "conf" / "local.yaml", ["spark.master"])
    with pytest.raises(ConfigError, match="no list element"):
        load_config(REPO / "conf" / "local.yaml", ["sources.9.limit=1"])


def test_unsafe_source_path_rejected(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  - {name: x, adapter: medqa, path: 's3://bucket/../etc'}\n")
    with pytest.raises(ConfigError, match=r"\.\."):
        load_config(bad)


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)
