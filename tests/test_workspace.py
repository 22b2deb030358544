"""One workspace kept across many invocations: each change a researcher makes to configs/ trains exactly what is
new, and the folders already finished stay byte-identical (real `snakemake` on tiny configs)."""

import pytest
import yaml
from workflow_helpers import folder_hashes, make_workspace, run_folders, snakemake, tiny_config

pytestmark = pytest.mark.workflow


def trained_names(result):
    """Experiment names whose train job ran in this invocation (from Snakemake's `wildcards:` lines)."""
    names = []
    lines = result.output.splitlines()
    for i, line in enumerate(lines):
        if line.strip() in ("rule train:", "localrule train:"):
            for follow in lines[i + 1:i + 12]:
                if follow.strip().startswith("wildcards:"):
                    names.append(follow.split("name=")[1].split(",")[0])
                    break
    return sorted(names)


def hashes(workspace):
    return {f.name: folder_hashes(f) for f in run_folders(workspace)}


def test_a_sequence_of_everyday_changes_trains_exactly_what_is_new(tmp_path):
    workspace = make_workspace(tmp_path / "ws", {"m.yaml": tiny_config("m")})
    configs = workspace / "configs"
    assert trained_names(snakemake(workspace)) == ["m"]

    def step(expected, change):
        before = hashes(workspace)
        change()
        result = snakemake(workspace)
        assert trained_names(result) == sorted(expected), result.output[-3000:]
        after = hashes(workspace)
        for name, files in before.items():  # nothing that was finished changed
            assert after.get(name) == files, name
        return result

    # a config whose file name sorts after the existing one, then one that sorts before
    step(["z"], lambda: (configs / "z.yaml").write_text(tiny_config("z")))
    step(["a"], lambda: (configs / "a.yaml").write_text(tiny_config("a")))
    # rename a file (same content, so the same experiment name), then delete one: nothing trains
    step([], lambda: (configs / "z.yaml").rename(configs / "y.yaml"))
    step([], lambda: (configs / "a.yaml").unlink())
    # a two-seed sweep, then one more seed
    step(["s-s1", "s-s2"], lambda: (configs / "s.yaml").write_text(tiny_config("s", sweep={"seeds": [1, 2]})))
    step(["s-s3"], lambda: (configs / "s.yaml").write_text(tiny_config("s", sweep={"seeds": [1, 2, 3]})))

    # two new configs while another one's model changes
    def add_two_edit_one():
        (configs / "b.yaml").write_text(tiny_config("b"))
        (configs / "c.yaml").write_text(tiny_config("c"))
        doc = yaml.safe_load((configs / "m.yaml").read_text())
        doc["model"]["learning_rate"] = 0.002
        (configs / "m.yaml").write_text(yaml.safe_dump(doc))

    step(["b", "c", "m"], add_two_edit_one)
    names = sorted(f.name.split("__")[0] for f in run_folders(workspace))
    assert names == ["a", "b", "c", "m", "m", "s-s1", "s-s2", "s-s3", "z"]
    assert snakemake(workspace).nothing_to_do


def _fake_mnist(folder, n_train=200, n_test=60):
    """Four small MNIST-format IDX .gz files (random pixels, labels 0..9 in turn)."""
    import gzip

    import numpy as np

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    content = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
               "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
               "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
               "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8)}
    for stem, array in content.items():
        header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
        with gzip.open(folder / f"{stem}.gz", "wb") as handle:
            handle.write(header + array.tobytes())


def test_a_crashed_training_is_failed_with_its_reason_and_never_holds_up_the_comparison(tmp_path):
    """A data file damaged after planning (a download replaced half-way): its training crashes, the run shows
    `failed` with the reason and the log, and the next invocation writes the comparison of the others."""
    import json
    import subprocess

    from workflow_helpers import SSVAE

    workspace = make_workspace(tmp_path / "ws", {
        "alpha.yaml": tiny_config("alpha"),
        "m.yaml": tiny_config("m", data={"dataset": "mnist", "path": "data/fake", "num_samples": 150,
                                         "num_labeled": 20})})
    _fake_mnist(workspace / "data" / "fake")
    planned = snakemake(workspace, "--until", "derive_arch_code")
    assert "train" not in planned.jobs
    images = workspace / "data" / "fake" / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[: images.stat().st_size // 2])
    first = snakemake(workspace, check=False)
    assert first.returncode != 0 and trained_names(first) == ["alpha", "m"]
    (crashed,) = [f for f in run_folders(workspace) if f.name.startswith("m__")]
    rows = {r["name"]: r for r in json.loads(subprocess.run(
        [SSVAE, "runs", "--results", str(workspace / "results"), "--status", "failed", "--json"],
        capture_output=True, text=True, check=True).stdout)}
    assert list(rows) == ["m"], rows
    assert rows["m"]["reason"].startswith("train failed: ") and "EOFError" in rows["m"]["reason"]
    assert rows["m"]["log"] == "logs/train.log" and (crashed / "logs" / "train.log").is_file()
    second = snakemake(workspace, check=False)
    assert second.returncode != 0 and second.ran("compare") == 1  # tried again, and compared without it
    comparison = (workspace / "results" / "COMPARISON.md").read_text()
    ranked, not_ranked = comparison.split("## Runs not ranked")
    assert "alpha" in ranked and crashed.name in not_ranked
