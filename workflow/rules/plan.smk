rule validate_config:
    input:
        config_file,
    output:
        "results/.plan/{plan}/validated.json",
    log:
        "results/.plan/{plan}/logs/validate_config.log",
    benchmark:
        "results/.plan/{plan}/benchmarks/validate_config.tsv"
    conda:
        "../../envs/ssvae.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        script=script("validate_config.py"),
    shell:
        "{params.script} {input} --key {wildcards.plan} --out {output} --log {log}"


checkpoint derive_arch_code:
    input:
        "results/.plan/{plan}/validated.json",
    output:
        "results/.plan/{plan}/run.json",
    log:
        "results/.plan/{plan}/logs/derive_arch_code.log",
    benchmark:
        "results/.plan/{plan}/benchmarks/derive_arch_code.tsv"
    conda:
        "../../envs/ssvae.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        script=script("derive_arch_code.py"),
    shell:
        "{params.script} {input} --results results --out {output} > {log} 2>&1"
