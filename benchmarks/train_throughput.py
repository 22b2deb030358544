"""Training throughput of the reference model against this machine's matmul peak and a plain per-batch loop.

Reference config: mnist5k (4,500 training images), dense [256, 128], latent 16, mixture prior K=10,
τ-classifier, batch 128; and the same model with the conv encoder/decoder. For each it measures, in one run:
compile time, steady-state seconds per training epoch (median of several), samples/s, achieved GFLOP/s (XLA's
FLOP count of the train step × steps per epoch / time) beside the attainable peak (a jitted matmul of the
model's largest layer shape, and a 2048² one), and the same train step driven the plain way (a Python loop over
the jitted step with a host sync every step, as the earlier system did) with the ratio.

    python benchmarks/train_throughput.py [--epochs 7] [--conv-epochs 3] [--skip-conv] [--conv-scan]
    python benchmarks/train_throughput.py --dataset mnist --data-path data/mnist --epochs 3 --conv-epochs 1
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from ssvae import config
from ssvae.data import datasets
from ssvae.model.rng import run_keys
from ssvae.training import step


def reference_config(**overrides) -> config.ModelConfig:
    model = {**config.defaults()["model"], "hidden_dims": [256, 128], "latent_dim": 16, "prior_type": "mixture",
             "num_components": 10, "use_tau_classifier": True, "batch_size": 128, "input_hw": [28, 28],
             "component_embedding_dim": 16, **overrides}
    return config.ModelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in model.items()})


def training_images(dataset: str = "mnist5k", path: str | None = None):
    """mnist5k: 4,500 images (the pool left after a 10% test split); mnist: the 60,000 training images of the
    IDX files at `path`; with the first 100 stratified labels."""
    cfg = config.DataConfig(dataset=dataset, path=path, num_samples=None, num_labeled=100, val_split=0.01,
                            test_split=0.1, seed=42)
    splits = datasets.load_splits(cfg)
    x = np.concatenate([splits.x_train, splits.x_val])
    y = np.concatenate([np.where(splits.labeled, splits.y_train, -1), np.full(len(splits.x_val), -1)])
    return x.astype(np.float32), y.astype(np.int32)


def flops_of(compiled) -> float:
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0]
    return float(analysis.get("flops", float("nan")))


def matmul_peak(m: int, k: int, n: int, repeats: int = 64) -> float:
    """Attainable GFLOP/s of a jitted [m, k] × [k, n] float32 matmul (several in one call to hide dispatch)."""
    a = jax.random.normal(jax.random.PRNGKey(0), (repeats, m, k), jnp.float32)
    b = jax.random.normal(jax.random.PRNGKey(1), (k, n), jnp.float32)
    f = jax.jit(lambda a, b: jnp.einsum("rmk,kn->rmn", a, b))
    jax.block_until_ready(f(a, b))
    times = []
    for _ in range(7):
        t = time.perf_counter()
        jax.block_until_ready(f(a, b))
        times.append(time.perf_counter() - t)
    return 2.0 * repeats * m * k * n / statistics.median(times) / 1e9


@dataclasses.dataclass
class Measurement:
    model: str
    loop: str
    compile_s: float
    epoch_s: float
    samples_per_s: float
    gflop_per_epoch: float
    plain_epoch_s: float | None = None


def measure(name: str, cfg: config.ModelConfig, x, y, loop: str, epochs: int, plain_epochs: int) -> Measurement:
    n = len(x)
    program = step.TrainProgram(cfg, n, loop=loop)
    keys = run_keys(0)
    state = program.init_state(keys["init"], x)
    x_dev, y_dev, key = jax.device_put(x), jax.device_put(y), jax.device_put(keys["train"])
    pool = jax.device_put(np.zeros(0, np.int32))
    e0 = np.int32(0)
    start = time.perf_counter()
    plan = jax.jit(program.epoch_plan)
    order, weights = plan(key, pool, e0)
    train_step = jax.jit(program.train_step).lower(state, program.zero_train_acc(), x_dev, y_dev, order, weights,
                                                   key, np.int32(0), e0).compile()
    if loop == "scan":
        run_epoch = jax.jit(program.train_epoch).lower(state, x_dev, y_dev, pool, key, e0).compile()
    compile_s = time.perf_counter() - start
    gflop = flops_of(train_step) * program.num_batches / 1e9

    def one_epoch(state, epoch):
        e = np.int32(epoch)
        if loop == "scan":
            state, acc = run_epoch(state, x_dev, y_dev, pool, key, e)
        else:
            state, acc = program.step_epoch(train_step, plan, state, x_dev, y_dev, pool, key, e)
        jax.block_until_ready(acc)
        return state

    state = one_epoch(state, 0)  # warm-up
    times = []
    for epoch in range(1, epochs + 1):
        t = time.perf_counter()
        state = one_epoch(state, epoch)
        times.append(time.perf_counter() - t)
    epoch_s = statistics.median(times)

    plain = None
    if plain_epochs:
        plain_times = []
        for epoch in range(plain_epochs):
            t = time.perf_counter()
            order, weights = plan(key, pool, np.int32(epoch))
            acc = program.zero_train_acc()
            for i in range(program.num_batches):
                state, acc = train_step(state, acc, x_dev, y_dev, order, weights, key, np.int32(i), np.int32(epoch))
                float(acc["n"])  # host sync every step
            plain_times.append(time.perf_counter() - t)
        plain = statistics.median(plain_times)
    print(f"  {name} [{loop}]: compile {compile_s:.1f} s, epoch {epoch_s:.3f} s (runs {[round(t, 3) for t in times]})"
          + (f", plain loop {plain:.3f} s" if plain else ""), file=sys.stderr, flush=True)
    return Measurement(name, loop, compile_s, epoch_s, n / epoch_s, gflop, plain)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=7, help="timed epochs of the dense model (median)")
    parser.add_argument("--conv-epochs", type=int, default=3, help="timed epochs of the conv model (median)")
    parser.add_argument("--skip-conv", action="store_true")
    parser.add_argument("--dataset", choices=["mnist5k", "mnist"], default="mnist5k",
                        help="mnist: full MNIST's 60,000 training images (needs --data-path)")
    parser.add_argument("--data-path", help="folder of the four MNIST IDX files (docs/datasets.md)")
    parser.add_argument("--conv-scan", action="store_true", help="also time the conv model as one lax.scan per epoch")
    args = parser.parse_args(argv)
    if args.dataset == "mnist" and not args.data_path:
        parser.error("--dataset mnist needs --data-path")

    x, y = training_images(args.dataset, args.data_path)
    peak_layer = matmul_peak(128, 784, 256)
    peak_2048 = matmul_peak(2048, 2048, 2048, repeats=2)
    dense = reference_config()
    conv = reference_config(encoder_type="conv", decoder_type="conv")
    rows = [measure("dense", dense, x, y, "scan", args.epochs, 3),
            measure("dense", dense, x, y, "step", args.epochs, 0)]
    if not args.skip_conv:
        rows.append(measure("conv", conv, x, y, "step", args.conv_epochs, 1))
        if args.conv_scan:
            rows.append(measure("conv", conv, x, y, "scan", 1, 0))

    command = "python " + " ".join(["benchmarks/train_throughput.py", *(argv if argv is not None else sys.argv[1:])])
    print(f"`{command}`")
    print()
    print(f"{len(x):,} training images, batch 128; {platform.processor() or platform.machine()}, "
          f"{jax.devices()[0].platform} x{len(jax.devices())}, jax {jax.__version__}")
    print(f"attainable peak: {peak_layer:.0f} GFLOP/s ([128,784]x[784,256] matmul), "
          f"{peak_2048:.0f} GFLOP/s (2048² matmul)")
    print()
    print("| model | loop | compile s | s/epoch (median) | samples/s | GFLOP/epoch | GFLOP/s | % of peak "
          "| peak-limited s/epoch | × limit | plain loop s/epoch | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        achieved = r.gflop_per_epoch / r.epoch_s
        limit = r.gflop_per_epoch / peak_layer
        plain = f"{r.plain_epoch_s:.3f}" if r.plain_epoch_s else "—"
        speedup = f"{r.plain_epoch_s / r.epoch_s:.2f}×" if r.plain_epoch_s else "—"
        print(f"| {r.model} | {r.loop} | {r.compile_s:.1f} | {r.epoch_s:.3f} | {r.samples_per_s:,.0f} "
              f"| {r.gflop_per_epoch:.1f} | {achieved:.0f} | {100 * achieved / peak_layer:.0f}% | {limit:.3f} "
              f"| {r.epoch_s / limit:.1f} | {plain} | {speedup} |")


if __name__ == "__main__":
    main()
