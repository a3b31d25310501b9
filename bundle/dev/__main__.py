"""Developer command line: ``python -m bundle.dev <command> [--flags]`` (``--help`` after a command lists its flags).

Commands (experiments; the product's commands are ``python -m bundle``):
    benchmark-sweep       sampling time against N and K, JSON and SVG plot (see bundle.dev.sweep)
    sampler-agreement     few-step DDIM vs DDPM-1000 masks on lesion slices of labelled cases
                          (see bundle.dev.sampler_agreement)
    healthy-anatomy       pseudo-FLAIR healthy MNI brains (empty labels) as training anatomy for synthetic MS lesions
                          (see bundle.dev.healthy_anatomy)
    semi-synthetic        real MS lesion masks of other patients inserted into the labelled MS scan, with a datalist
                          (see bundle.dev.semi_synthetic)
    acquisition-variants  labelled cases as thick-slice, tilted-grid, int16 or skull-on scans, with a datalist
                          (see bundle.dev.acquisition_variants)
    min-lesion-size       pooled out-of-fold masks scored again without lesions below V mm³
                          (see bundle.dev.min_lesion_size)
    fill-holes            pooled out-of-fold masks scored again with their holes filled (see bundle.dev.fill_holes)
    speed-rule            a same-weights speed candidate's pooled scores against the default's, rule 12's terms
                          (see bundle.dev.speed_rule)
    confident-lesions     pooled out-of-fold masks scored again with only lesions whose largest probability reaches q
                          (see bundle.dev.confident_lesions)
    lesion-ratio          each labelled case's lesion-to-tissue ratio against its out-of-fold Dice
                          (see bundle.dev.lesion_ratio)
    lesion-size           true lesions found and predicted lesions that are true, by lesion volume
                          (see bundle.dev.lesion_size)
    keep-states           the training queue's newest states (compact) and per-fold scores into models/in_training/,
                          to commit at the end of a CPU session (see bundle.dev.keep_states)
    restore-states        those copied back into runs/ where it has nothing newer
"""

from __future__ import annotations

import fire

from bundle.dev.acquisition_variants import acquisition_variants
from bundle.dev.confident_lesions import confident_lesions_command
from bundle.dev.fill_holes import fill_holes_command
from bundle.dev.healthy_anatomy import healthy_cases
from bundle.dev.keep_states import keep, restore
from bundle.dev.lesion_ratio import lesion_ratios_command
from bundle.dev.lesion_size import lesion_sizes_command
from bundle.dev.min_lesion_size import min_lesion_size_command
from bundle.dev.sampler_agreement import sampler_agreement
from bundle.dev.semi_synthetic import semi_synthetic_cases
from bundle.dev.speed_rule import speed_rule_command
from bundle.dev.sweep import sweep


def main() -> None:
    fire.Fire(
        {
            "benchmark-sweep": sweep,
            "sampler-agreement": sampler_agreement,
            "healthy-anatomy": healthy_cases,
            "semi-synthetic": semi_synthetic_cases,
            "acquisition-variants": acquisition_variants,
            "min-lesion-size": min_lesion_size_command,
            "fill-holes": fill_holes_command,
            "confident-lesions": confident_lesions_command,
            "speed-rule": speed_rule_command,
            "lesion-ratio": lesion_ratios_command,
            "lesion-size": lesion_sizes_command,
            "keep-states": keep,
            "restore-states": restore,
        }
    )


if __name__ == "__main__":
    main()
