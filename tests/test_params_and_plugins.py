"""Parameter validation, plugin loading, provenance, isolation and name errors."""

from __future__ import annotations

import textwrap

import pytest

from advbench.contract.params import Param, resolve
from advbench.errors import ParamError, PluginError
from advbench.host import plugins


def test_params_parse_and_validate():
    declared = (
        Param("step", 0.1, "", float, minimum=0.0, min_exclusive=True),
        Param("iterations", 10, "", int, minimum=1),
        Param("flag", False, "", bool),
    )
    assert resolve("a", declared, {"step": "0.5", "iterations": "3", "flag": "yes"}) == {
        "step": 0.5,
        "iterations": 3,
        "flag": True,
    }
    with pytest.raises(ParamError, match=r"a\.step: must be > 0.0"):
        resolve("a", declared, {"step": "0"})
    with pytest.raises(ParamError, match=r"a\.iterations: expected int"):
        resolve("a", declared, {"iterations": "2.5"})
    with pytest.raises(ParamError, match="must be finite"):
        resolve("a", declared, {"step": "nan"})
    with pytest.raises(ParamError, match=r"unknown parameter a\.stepp"):
        resolve("a", declared, {"stepp": "1"})


def test_attack_rejects_inverted_clip_range(registry):
    with pytest.raises(ParamError, match=r"clip_min 0\.9 >= clip_max 0\.1"):
        registry.attacks.get("ifgsm").config({"clip_min": "0.9", "clip_max": "0.1"})


def test_builtins_register_through_the_hooks(registry):
    assert registry.builtin_names("models") == ["mlp", "softmax", "cnn", "keras-mlp", "cnn-pgd"]
    assert registry.builtin_names("attacks") == [
        "noise",
        "ifgsm",
        "fgsm",
        "pgd",
        "mim",
        "deepfool",
        "cw-l2",
        "square",
        "targeted",
        "fooling",
    ]
    assert registry.info["mlp"].source == "builtin"
    assert registry.info["ifgsm"].attacks == ["ifgsm"]
    assert not registry.errors
    assert set(plugins.BUILTIN_NAMES) <= set(registry.info)


def test_unknown_name_suggests_the_closest(registry):
    with pytest.raises(PluginError, match=r"unknown attack 'ifgms'.*did you mean 'ifgsm'"):
        registry.attacks.get("ifgms")


def _write(folder, name, body):
    (folder / f"{name}.py").write_text(textwrap.dedent(body))


def test_drop_in_file_plugin_and_isolation_of_broken_ones(tmp_path):
    _write(
        tmp_path,
        "extra",
        """
        from advbench import hookimpl
        from advbench.contract.attack import Attack, CLIP_PARAMS
        from advbench.contract.params import Param

        class Still(Attack):
            name = "still"
            params = (Param("iterations", 1, "", int, minimum=1), *CLIP_PARAMS)
            def step(self, net, s, params):
                return s.x

        @hookimpl
        def register_attacks(register):
            register(Still())
        """,
    )
    _write(tmp_path, "broken", "raise RuntimeError('boom at import')\n")
    _write(
        tmp_path,
        "raising",
        """
        from advbench import hookimpl

        @hookimpl
        def register_models(register):
            raise ValueError("bad hook")
        """,
    )
    loaded = plugins.load(tmp_path)
    assert "still" in loaded.attacks.names()
    assert loaded.info["extra"].source.endswith("extra.py")
    errors = {i.name: i.error for i in loaded.errors}
    assert "boom at import" in errors["broken"]
    assert "bad hook" in errors["raising"]
    assert "mlp" in loaded.models.names()


def test_duplicate_names_are_an_error_naming_both(tmp_path):
    _write(
        tmp_path,
        "twin",
        """
        from advbench import hookimpl
        from advbench_plugins.ifgsm import IFGSM

        @hookimpl
        def register_attacks(register):
            register(IFGSM())
        """,
    )
    with pytest.raises(
        PluginError, match="'ifgsm' is registered by both plugin 'ifgsm' and plugin 'twin'"
    ):
        plugins.load(tmp_path)


def test_allow_and_block_lists(monkeypatch):
    monkeypatch.setenv(plugins.ENV_BLOCK, "noise")
    assert "noise" not in plugins.load().attacks.names()
    monkeypatch.delenv(plugins.ENV_BLOCK)
    monkeypatch.setenv(plugins.ENV_ALLOW, "mlp,ifgsm,targeted")
    loaded = plugins.load()
    assert loaded.models.names() == ["mlp"]
    assert loaded.attacks.names() == ["ifgsm", "targeted", "fooling"]
