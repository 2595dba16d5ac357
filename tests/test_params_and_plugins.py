"""Parameter validation, plugin loading, provenance, isolation, name errors, refusals at
registration, and the contract's one-value threat models and engine hints."""

from __future__ import annotations

import textwrap

import pytest

import advbench
from advbench import Attack, EngineHints, Model, ThreatModel
from advbench.contract.attack import loop_problem
from advbench.contract.params import Param, resolve
from advbench.errors import ParamError, PluginError
from advbench.host import plugins
from advbench.host.registry import Table


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
    assert registry.builtin_names("models") == [
        "mlp",
        "softmax",
        "cnn",
        "noisy-cnn",
        "keras-mlp",
        "cnn-pgd",
    ]
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
        "apgd",
        "fab",
        "fmn",
        "autoattack",
        "spsa",
        "hopskipjump",
        "ead",
        "jsma",
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
        from advbench import CLIP_PARAMS, Attack, Param, hookimpl

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


def test_a_duplicate_name_is_reported_naming_both_and_the_rest_loads(tmp_path):
    """The first registration keeps the name; the second plugin's object is left out and the
    plugin reported, so `advbench plugins` itself still answers (it stopped every command)."""
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
    _write(tmp_path, "mlp", "raise AssertionError('never imported: the name is taken')\n")
    loaded = plugins.load(tmp_path)
    errors = {i.name: i.error for i in loaded.errors}
    assert "'ifgsm' is registered by both plugin 'ifgsm' and plugin 'twin'" in errors["twin"]
    assert loaded.attacks.entries["ifgsm"].plugin == "ifgsm"
    dropin_mlp = [i for i in loaded.info.values() if i.name == "mlp" and i.error]
    assert dropin_mlp and "builtin is also 'mlp'" in dropin_mlp[0].error
    assert "pgd" in loaded.attacks.names() and "mlp" in loaded.models.names()


def test_a_plugin_calling_sys_exit_is_a_plugin_error(tmp_path):
    _write(tmp_path, "quitter", "import sys\nsys.exit(0)\n")
    loaded = plugins.load(tmp_path)
    assert {i.name: i.error for i in loaded.errors}["quitter"] == "failed to load: SystemExit: 0"
    assert "mlp" in loaded.models.names()


def test_a_relative_plugin_directory_in_the_environment_is_named(tmp_path, monkeypatch, capsys):
    (tmp_path / "plugs").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(plugins.ENV_DIR, "plugs")
    plugins.load()
    err = capsys.readouterr().err
    assert f"running drop-in plugin files from {tmp_path / 'plugs'}" in err


def test_allow_and_block_lists(monkeypatch):
    monkeypatch.setenv(plugins.ENV_BLOCK, "noise")
    assert "noise" not in plugins.load().attacks.names()
    monkeypatch.delenv(plugins.ENV_BLOCK)
    monkeypatch.setenv(plugins.ENV_ALLOW, "mlp,ifgsm,targeted")
    loaded = plugins.load()
    assert loaded.models.names() == ["mlp"]
    assert loaded.attacks.names() == ["ifgsm", "targeted", "fooling"]


def test_an_attack_that_cannot_bound_its_loop_is_refused_at_registration(tmp_path):
    """No `iterations` parameter, no `iterations()`, no `build`: refused when registered (not
    when its graph is first built), named in the plugin's error; the rest still registers."""
    _write(
        tmp_path,
        "loose",
        """
        from advbench import CLIP_PARAMS, Attack, Param, hookimpl

        class Endless(Attack):
            name = "endless"
            params = (Param("step", 0.1, "", float), *CLIP_PARAMS)
            def step(self, net, s, params):
                return s.x

        class Counted(Endless):
            name = "counted"
            def iterations(self, params):
                return 3

        @hookimpl
        def register_attacks(register):
            register(Endless())
            register(Counted())
        """,
    )
    loaded = plugins.load(tmp_path)
    assert "endless" not in loaded.attacks.names() and "counted" in loaded.attacks.names()
    error = loaded.info["loose"].error
    assert "refused attack 'endless'" in error and "iterations" in error
    assert loaded.info["loose"].attacks == ["counted"]
    # registered by hand, the table refuses it too
    endless = loaded.manager.get_plugin("loose").Endless()
    with pytest.raises(PluginError, match="plugin 'x' refused attack 'endless'"):
        Table("attack", problem=loop_problem).add(endless, "x")


def test_builtin_threat_models_keep_their_budgets(registry):
    """One value per attack: what the kit asserts and what a cell's summary reports."""

    def threat(name, **overrides):
        attack = registry.attacks.get(name)
        return attack.threat_model(attack.config({k: str(v) for k, v in overrides.items()}))

    for name in ("fgsm", "mim", "square"):
        assert threat(name).budget == ("linf", 0.3) and threat(name).bound("linf") == 0.3
    assert threat("pgd", norm="2", eps=1.5).budget == ("l2", 1.5)
    assert threat("pgd", norm="2", eps=1.5).bound("linf") is None
    for name in ("ifgsm", "noise"):  # a bound from iterations × step, not a reported budget
        t = threat(name, step=0.01, iterations=20)
        assert t.budget is None and t.bound("linf") == pytest.approx(0.2)
    for name in ("deepfool", "cw-l2"):
        assert threat(name) == ThreatModel.minimal("l2") and threat(name).bound("l2") is None
    assert threat("targeted") == ThreatModel.unbounded()


def test_threat_model_values_are_checked():
    assert ThreatModel.bounded("l2", 2.0).budget == ("l2", 2.0)
    assert ThreatModel.minimal("l0").norm == "l0" and ThreatModel.bounded("l1", 3.0).bound("l1")
    for bad in (
        lambda: ThreatModel.bounded("l3", 0.3),
        lambda: ThreatModel.bounded("linf", float("nan")),
        lambda: ThreatModel("minimal", "l2", 0.3),
        lambda: ThreatModel("unbounded", reported=True),
        lambda: ThreatModel("bounded", None, 0.3),
    ):
        with pytest.raises(PluginError):
            bad()


def test_version_0_1_budget_methods_and_model_flags_are_refused_with_the_fix():
    with pytest.raises(PluginError, match=r"defines budget, linf_budget .*threat_model"):

        class OldAttack(Attack):
            name = "old"

            def linf_budget(self, params):
                return 0.3

            def budget(self, params):
                return ("linf", 0.3)

    with pytest.raises(PluginError, match=r"sets attack_batch_size .*hints = EngineHints"):

        class OldModel(Model):
            name = "old"
            attack_batch_size = 100

    with pytest.raises(PluginError, match="attack_batch_size must be an int >= 1"):
        EngineHints(attack_batch_size=0)


def test_the_facade_exports_what_plugins_need():
    for name in advbench.__all__:
        assert hasattr(advbench, name), name
    assert advbench.Model.hints == EngineHints()


def test_a_sweep_labels_every_cell_the_default_value_included(registry):
    """`--set pgd.eps=0.1,0.3`: two cells told apart by their value in tables, legends and
    picture names — the one at the default (0.3) is `pgd(eps=0.3)`, not a bare `pgd`."""
    from advbench.engine.run import expand
    from advbench.output.figures import file_name

    pgd, spec = registry.attacks.get("pgd"), registry.datasets.get("mnist").spec
    assert [c.key for c in expand(pgd, {"eps": "0.1,0.3"}, spec)] == [
        "pgd(eps=0.1)",
        "pgd(eps=0.3)",
    ]
    both = expand(pgd, {"eps": "0.1,0.3", "iterations": "40,10"}, spec)
    assert [c.key for c in both][:2] == ["pgd(eps=0.1,iterations=40)", "pgd(eps=0.1,iterations=10)"]
    assert [c.key for c in expand(pgd, {"eps": "0.3"}, spec)] == ["pgd"]  # no sweep, no label
    assert [c.key for c in expand(pgd, {"eps": "0.1"}, spec)] == ["pgd(eps=0.1)"]
    assert file_name("mlp-03-pgd(eps=0.3).png") == "mlp-03-pgd_eps_0.3_.png"


def test_a_neutral_parameter_at_its_default_stays_out_of_the_run_identity(registry):
    """`eot` came after runs were stored: at 1 (the plain graph) a pgd cell's identity is the
    one it had before, so those runs resume; any other value is another run."""
    from advbench.contract.params import identity

    pgd = registry.attacks.get("pgd")
    plain, eot = pgd.config(), pgd.config({"eot": "3"})
    assert "eot" in plain and "eot" not in identity(pgd.params, plain)
    assert identity(pgd.params, eot)["eot"] == 3
    assert identity(pgd.params, plain) == {k: v for k, v in plain.items() if k != "eot"}
