from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


# Defaults of the workflow's own settings; --config on the command line overrides them.
configfile: Path(workflow.basedir) / "workflow" / "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/resources.smk"
include: "workflow/rules/search_inputs.smk"
include: "workflow/rules/plan.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/compare.smk"


localrules:
    all,
    validate_config,
    derive_arch_code,
    invalid_config,
    promote,
    ask,
    compare,
    naming_legend,


rule all:
    default_target: True
    input:
        # the comparison first: the HTML report lists its categories in the order their jobs joined the DAG
        comparison_target,
        planning_target,
        run_targets,
        "results/NAMING_LEGEND.md",
