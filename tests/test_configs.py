"""Config files with a variant argument and typed command-line overrides (lcasr_jax.configs)."""

from pathlib import Path

import pytest

from lcasr_jax.configs import ConfigError, load_config, split_overrides

FAMILY = '''
import ml_collections

def get_config(arg="a"):
    cfg = ml_collections.ConfigDict()
    cfg.name = arg
    cfg.opt = ml_collections.ConfigDict(dict(lr=1e-3, steps=10, on=False, window=(-1, -1)))
    return cfg
'''


@pytest.fixture
def family(tmp_path: Path) -> str:
    path = tmp_path / "family.py"
    path.write_text(FAMILY)
    return str(path)


def test_variant_argument_and_typed_overrides(family):
    assert load_config(family).name == "a"
    cfg = load_config(f"{family}:b", ["opt.lr=2", "opt.steps=7", "opt.on=true",
                                      "opt.window=(64, 0)", "name=c"])
    assert cfg.name == "c"
    assert cfg.opt.lr == 2.0 and isinstance(cfg.opt.lr, float)
    assert cfg.opt.steps == 7 and isinstance(cfg.opt.steps, int)
    assert cfg.opt.on is True and cfg.opt.window == (64, 0)
    assert load_config(family, ["opt.on=0"]).opt.on is False


@pytest.mark.parametrize("override, match", [
    ("opt.lrr=1", "unknown config field opt.lrr"),
    ("nope.lr=1", "unknown config field nope"),
    ("opt.steps=1.5", "opt.steps='1.5': expected int"),
    ("opt.lr=abc", "opt.lr='abc': expected float"),
    ("opt.on=maybe", "opt.on='maybe': expected bool"),
    ("opt.window=3", "opt.window='3': expected tuple"),
    ("opt.lr", "is not FIELD=VALUE"),
])
def test_bad_override_is_one_line_naming_the_field(family, override, match):
    with pytest.raises(ConfigError, match=match) as e:
        load_config(family, [override])
    assert "\n" not in str(e.value)


def test_bad_file_is_one_line_naming_it(tmp_path, family):
    with pytest.raises(ConfigError, match="missing.py not found"):
        load_config(str(tmp_path / "missing.py"))
    broken = tmp_path / "broken.py"
    broken.write_text("def get_config():\n    return 1 / 0\n")
    with pytest.raises(ConfigError, match="broken.py: ZeroDivisionError"):
        load_config(str(broken))
    with pytest.raises(ConfigError, match="returned int"):
        (tmp_path / "int.py").write_text("def get_config():\n    return 3\n")
        load_config(str(tmp_path / "int.py"))


def test_split_overrides_takes_both_spellings():
    rest, overrides = split_overrides(
        ["--config=f.py", "--config.a.b=1", "--workdir", "w", "--config.c", "x y"])
    assert rest == ["--config=f.py", "--workdir", "w"]
    assert overrides == ["a.b=1", "c=x y"]
    with pytest.raises(ConfigError, match="needs a value"):
        split_overrides(["--config.a"])
