"""The accuracy part of a same-weights speed rule (docs/results.md, rules 12, 13 and 16):
``python -m bundle.dev speed-rule --candidate_prefix tissue_boxes_steps_4_score --iterations 4000 [--output_dir runs/cv]``.

Compares a speed candidate's pooled out-of-fold scores (``crossval score --model <candidate>``, in
OUTPUT_DIR/<candidate_prefix>_<N>) with the default's of the same snapshots (OUTPUT_DIR/score_<N>), both on all four
folds, under rule 12's terms: pooled MS and glioma Dice each at most 0.01 below the default's, MS and glioma lesion F1
each at most 0.02 below, and the review flag refitted by rule 2 on the candidate's scores (``crossval rule``,
<folder>/review_rule.json) flagging at most 3 more cases than the default's refit. Writes
OUTPUT_DIR/<candidate_prefix>_<N>/speed_rule.json and prints one line per term and the verdict.
"""

from __future__ import annotations

import json
import os

from bundle.evaluation.crossval import flagged_cases
from bundle.outputs.files import write_json_atomic

ALLOWED = {("ms", "dice"): 0.01, ("glioma", "dice"): 0.01, ("ms", "lesion_f1"): 0.02, ("glioma", "lesion_f1"): 0.02}
MAX_MORE_FLAGGED = 3


def _read(folder: str, name: str) -> dict:
    path = os.path.join(folder, name)
    if not os.path.isfile(path):
        raise SystemExit(f"error: {path}: missing (score all four folds and run `crossval rule` first)")
    with open(path) as f:
        return json.load(f)


def speed_rule(candidate_prefix: str, iterations: int, output_dir: str = "runs/cv") -> dict:
    """The comparison of the module docstring; returns what it writes."""
    default_dir = os.path.join(output_dir, f"score_{iterations}")
    candidate_dir = os.path.join(output_dir, f"{candidate_prefix}_{iterations}")
    default, candidate = _read(default_dir, "metrics.json"), _read(candidate_dir, "metrics.json")
    for folder, scored in ((default_dir, default), (candidate_dir, candidate)):
        if sorted(scored["settings"]["folds"]) != [0, 1, 2, 3]:
            raise SystemExit(f"error: {folder}: scored on folds {scored['settings']['folds']}, not all four")
    terms = {}
    for (kind, metric), allowed in ALLOWED.items():
        before, after = default["mean"][kind][metric], candidate["mean"][kind][metric]
        terms[f"{kind}_{metric}"] = {"default": before, "candidate": after, "change": round(after - before, 4),
                                     "allowed": -allowed, "passed": after >= before - allowed}
    flags = {"default": flagged_cases(_read(default_dir, "review_rule.json")),
             "candidate": flagged_cases(_read(candidate_dir, "review_rule.json"))}
    flags["passed"] = flags["candidate"] <= flags["default"] + MAX_MORE_FLAGGED
    result = {"iterations": iterations, "default": default_dir, "candidate": candidate_dir, "terms": terms,
              "flagged": flags, "passed": flags["passed"] and all(t["passed"] for t in terms.values())}
    write_json_atomic(os.path.join(candidate_dir, "speed_rule.json"), result)
    return result


def speed_rule_command(candidate_prefix: str, iterations: int, output_dir: str = "runs/cv") -> None:
    """Command line: ``speed_rule``, printed one term per line."""
    result = speed_rule(candidate_prefix, iterations, output_dir)
    for name, term in result["terms"].items():
        print(f"{name}: default {term['default']:.4f}, candidate {term['candidate']:.4f}, change {term['change']:+.4f} "
              f"(allowed {term['allowed']}): {'ok' if term['passed'] else 'FAIL'}")
    flags = result["flagged"]
    print(f"cases flagged by the refitted rule: default {flags['default']}, candidate {flags['candidate']} "
          f"(allowed {flags['default'] + MAX_MORE_FLAGGED}): {'ok' if flags['passed'] else 'FAIL'}")
    print(f"accuracy part: {'PASSED' if result['passed'] else 'FAILED'}")
