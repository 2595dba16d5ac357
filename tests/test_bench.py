"""`advbench bench` runs end to end on a small slice (its figures are timings, not asserted)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from advbench.cli import main


@pytest.mark.slow
def test_bench_smoke(tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = [
        "bench",
        "--limit",
        "200",
        "--sample",
        "3",
        "--naive-images",
        "50",
        "--train-steps",
        "300",
        "--cnn-images",
        "40",
        "--ensemble-images",
        "1",
        "--imported-images",
        "30",
        "--json",
        str(out),
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "tutorial loop" in text and "arithmetic floor" in text and "on cnn" in text
    data = json.loads(out.read_text())
    names = [r["name"] for r in data["attack"]]
    assert names[0].startswith("advbench ifgsm") and len(data["training"]) == 3
    assert data["reference_mismatches"] == 0  # same per-image iterations as the tutorial loop
    # the tutorial's code, the per-step loop and the in-graph trainer end with the same weights
    trained = data["training_weights"]
    assert trained["bit_identical"] and trained["max_abs_diff"] == [0.0, 0.0]
    assert "weights after training, all three ways: equal bit for bit" in text
    assert data["gemm_gflops"] > 1 and data["pgd_cnn"]["work"] > 0 and data["apgd_cnn"]["work"] > 0
    worst = data["worst_case"]  # the ensemble as a run does it, and its components on every image
    assert worst["images"] == 1 and len(worst["cascade"]) == len(worst["every_image"]) == 20
    steps = {way: sum(p["steps"] for p in worst[way]) for way in ("cascade", "every_image")}
    assert 0 < steps["cascade"] <= steps["every_image"]
    art_job = worst["art_job"]  # ART's components as an advbench ensemble, and a forward pass
    assert art_job["components"] == "apgd-ce+apgd-dlr+square" and len(art_job["parts"]) == 3
    assert art_job["seconds"] > 0 and worst["forward_seconds"] > 0
    imported = data["imported"]  # pgd on cnn, native vs its Keras twin imported from a file
    assert imported["n"] == 30 and imported["native_seconds"] > 0
    assert imported["differing_images"] == 0 and "the same per-image results" in text
    if importlib.util.find_spec("art") is not None:  # the optional extra `advbench[art]`
        assert names[-1].startswith("IBM ART") and data["art_same_task"]["images"] == 200
        assert worst["art"]["linf"] <= 0.3 + 1e-6  # ART's AutoAttack kept to the same budget
        assert "the same job on the first 200 images" in text
    else:
        assert "IBM ART not installed" in text
