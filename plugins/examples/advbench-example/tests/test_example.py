"""The example plugin tested with advbench's conformance kit (fixtures from its pytest plugin)."""


def test_registered_through_the_entry_point(advbench_registry):
    info = advbench_registry.info["example"]
    assert info.source == "entry point (advbench-example)"
    assert info.models == ["relu-mlp"] and info.attacks == ["gaussian"]


def test_model_conforms(advbench_checks):
    advbench_checks.check_model("relu-mlp")


def test_attack_conforms_on_our_model_and_the_builtin_mlp(advbench_checks):
    rec = advbench_checks.check_attack("gaussian", model="relu-mlp")
    assert rec.flipped.any()
    advbench_checks.check_attack("gaussian", {"iterations": "10"}, model="mlp")


def test_builtin_attack_runs_on_our_model(advbench_checks):
    rec = advbench_checks.check_attack(
        "pgd", {"iterations": "20", "step": "0.03"}, model="relu-mlp"
    )
    assert rec.flipped.mean() > 0.5


def test_timing(benchmark, advbench_attack_bench):
    advbench_attack_bench(benchmark, "gaussian", model="relu-mlp")
