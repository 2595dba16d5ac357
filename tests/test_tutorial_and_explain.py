"""The tutorials' sections and the explain views, run as a user would."""

from __future__ import annotations

from advbench.cli import main


def test_tutorial_lists_sections_of_both_tutorials(capsys):
    assert main(["tutorial"]) == 0
    out = capsys.readouterr().out
    for key in ("2.4", "5.5", "6.4", "fooling", "targeted", "maximise"):
        assert f"\n{key} " in out


def test_section_6_4_prints_what_the_tutorial_printed(tmp_path, capsys):
    assert main(["tutorial", "6.4", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "[0] [0]" in out
    # the default mlp flips image 3 after 102 steps: the tutorial's wording counts from 0
    assert "Classification of image changed after 101 iterations" in out
    assert (tmp_path / "6.4" / "images.png").stat().st_size > 1000


def test_sections_3_1_and_6_1(tmp_path, capsys):
    assert main(["tutorial", "3.1", "--out", str(tmp_path)]) == 0
    assert main(["tutorial", "6.1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "5 6" in out and "870.0" in out


def test_targeted_section_reaches_the_target(tmp_path, capsys):
    assert main(["tutorial", "targeted", "--out", str(tmp_path)]) == 0
    import re

    lines = capsys.readouterr().out.strip().splitlines()
    last = " ".join(lines[-3:-1])  # the probabilities printed after step 5 (two lines)
    probs = [float(v) for v in re.findall(r"\d\.\d+e[-+]\d+", last)]
    assert len(probs) == 10 and probs[3] > 0.9  # P(3) 0.97 here (tutorial: 0.96)


def test_unknown_section_is_one_line(capsys):
    assert main(["tutorial", "9.9"]) == 2
    assert "unknown tutorial section '9.9'" in capsys.readouterr().err


def test_explain_writes_every_view(tmp_path):
    assert main(["explain", "softmax", "--out", str(tmp_path / "s")]) == 0
    assert {p.name for p in (tmp_path / "s").glob("*.png")} == {"weights.png", "misclassified.png"}
    assert main(["explain", "cnn", "--out", str(tmp_path / "c")]) == 0
    names = {p.name for p in (tmp_path / "c").glob("*.png")}
    assert {"conv1-filters.png", "conv1-activations.png", "conv1-maximising.png"} <= names
    for p in [*(tmp_path / "s").glob("*.png"), *(tmp_path / "c").glob("*.png")]:
        assert p.stat().st_size > 5000
