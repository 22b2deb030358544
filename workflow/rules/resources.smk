# Resources ----------------------------------------------------------------------------------------------
# Defined here once and used by the rules (the profiles set none, so a user's own profile can add partition,
# account or QOS as default-resources). Sized from the benchmark records of the shipped configs (docs/cluster.md,
# "Resources"), with headroom; every retry gets twice the memory and time of the attempt before, so a
# job killed for either is resubmitted bigger (a killed train job resumes from its epoch checkpoint).


def doubling(base):
    """A resource that doubles with every attempt: base, 2 x base, 4 x base, ..."""

    def by_attempt(wildcards, attempt):
        return base * 2 ** (attempt - 1)

    return by_attempt


def slurm_resources(**overrides):
    """Partition, account and QOS from the workflow config (`--config slurm_partition=...`); unset: none given,
    so the user's profile or the site's defaults decide."""
    settings = {
        "slurm_partition": config.get("slurm_partition", ""),
        "slurm_account": config.get("slurm_account", ""),
        "qos": config.get("slurm_qos", ""),
        **overrides,
    }
    return {
        key: str(value) for key, value in settings.items() if value not in (None, "")
    }


SLURM = slurm_resources()


def train_threads(wildcards):
    """CPUs of a train job: 1 for the 8x8 digits (a model that trains in a second or two: two jobs side by side
    beat one job on two threads), 2 for 28x28 images (an epoch is markedly faster on two threads than on one;
    benchmarks/RESULTS.md has both measurements). `--set-threads train=N` overrides.
    """
    dataset = effective_of_run(wildcards)["effective"]["data"]["dataset"]
    return 1 if dataset == "digits" else 2


def gpus_of_run(wildcards):
    """GPUs the experiment config asks the train job for (experiment.gpus; 0: CPU only)."""
    return int(effective_of_run(wildcards)["effective"]["experiment"].get("gpus") or 0)


def train_gres(wildcards):
    """`gpu:N` for a train job whose config asks for N GPUs (SLURM: --gres=gpu:N), else nothing."""
    gpus = gpus_of_run(wildcards)
    return f"gpu:{gpus}" if gpus else ""


def train_partition(wildcards):
    """`slurm_gpu_partition` for a train job that asks for a GPU, else `slurm_partition`."""
    return (
        config["slurm_gpu_partition"]
        if gpus_of_run(wildcards)
        else config.get("slurm_partition", "")
    )


TRAIN_SLURM = (
    {**SLURM, "slurm_partition": train_partition}
    if config.get("slurm_gpu_partition")
    else SLURM
)
