"""Same-weights speed rule (bundle.dev.speed_rule): rule 12's terms on two scored folders."""

import json

import pytest

from bundle.dev.speed_rule import speed_rule


def _write(folder, ms_dice, glioma_f1, flagged, folds=(0, 1, 2, 3), cases=30):
    folder.mkdir(parents=True)
    mean = {"ms": {"dice": ms_dice, "lesion_f1": 0.4}, "glioma": {"dice": 0.8, "lesion_f1": glioma_f1}}
    (folder / "metrics.json").write_text(json.dumps({"mean": mean, "settings": {"folds": list(folds)},
                                                     "cases": [{}] * cases}))
    rule = {"chosen": "estimated_dice", "cases": cases,
            "candidates": {"estimated_dice": {"coverage": 1 - flagged / cases}}}
    (folder / "review_rule.json").write_text(json.dumps(rule))


@pytest.mark.parametrize("ms_dice, glioma_f1, flagged, passed", [
    (0.592, 0.215, 7, True),  # within every allowance
    (0.585, 0.30, 4, False),  # MS Dice 0.015 lower
    (0.60, 0.205, 4, False),  # glioma lesion F1 0.025 lower
    (0.60, 0.23, 8, False),  # 4 more cases flagged
])
def test_rule_12_terms(tmp_path, ms_dice, glioma_f1, flagged, passed):
    _write(tmp_path / "score_4000", 0.60, 0.23, 4)
    _write(tmp_path / "cand_score_4000", ms_dice, glioma_f1, flagged)
    result = speed_rule("cand_score", 4000, str(tmp_path))
    assert result["passed"] is passed
    assert result["terms"]["ms_dice"]["change"] == pytest.approx(ms_dice - 0.60, abs=1e-4)
    assert (tmp_path / "cand_score_4000" / "speed_rule.json").is_file()


def test_refuses_a_partial_score_with_one_line(tmp_path):
    _write(tmp_path / "score_4000", 0.60, 0.23, 4)
    _write(tmp_path / "cand_score_4000", 0.60, 0.23, 4, folds=(0, 1))
    with pytest.raises(SystemExit, match="cand_score_4000: scored on folds"):
        speed_rule("cand_score", 4000, str(tmp_path))
