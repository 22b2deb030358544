"""The contract between a trained model and everything that scores or draws it (no JAX needed to read it)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np


@dataclasses.dataclass
class Predictions:
    """Numpy outputs of the best checkpoint over one split (N images).

    z:                [N, D] latent used by the classifier and plots (posterior mean; for the decentralized
                      layout the responsibility-weighted mean of the per-component means)
    z_logvar:         [N, D] posterior log-variance (same weighting)
    y_prob:           [N, C] p(y|x) (head softmax, or r·τ for the τ-classifier)
    responsibilities: [N, K] q(c|x), or None for the standard prior
    recon:            [N, H, W] reconstruction mean in [0, 1] (sigmoid of the logits for bce)
    sigma:            [N] per-image σ of the heteroscedastic decoder, or None
    terms:            per-sample unweighted loss terms, each [N]: `reconstruction` (NLL in nats, summed
                      over pixels), `kl_z`, and `kl_c` for mixture-based priors
    """

    z: np.ndarray
    z_logvar: np.ndarray
    y_prob: np.ndarray
    responsibilities: np.ndarray | None
    recon: np.ndarray
    sigma: np.ndarray | None
    terms: dict[str, np.ndarray]

    @property
    def y_pred(self) -> np.ndarray:
        return self.y_prob.argmax(axis=1)

    @property
    def components(self) -> np.ndarray | None:
        """argmax_c q(c|x), or None without a component channel."""
        return None if self.responsibilities is None else self.responsibilities.argmax(axis=1)

    @property
    def neg_elbo(self) -> np.ndarray:
        """Per-sample negative ELBO = reconstruction NLL + KL_z (+ KL_c), in nats."""
        return np.sum(list(self.terms.values()), axis=0)


def read_predictions(run_dir: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a run folder's predictions.npz, loaded into memory."""
    with np.load(Path(run_dir) / "predictions.npz", allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}
