"""The Fréchet distance between two sets of feature vectors (FID's formula), and the features
the digit judge sees: the input of its last layer.

Each set is summarised by the mean and covariance of its rows, and the distance between the
two Gaussians is

    d² = |μ_a − μ_b|² + tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½)

(Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a local Nash
equilibrium"). `tr((Σ_a Σ_b)^½)` is computed as the sum of the square roots of the
eigenvalues of `Σ_a^½ Σ_b Σ_a^½`, a symmetric matrix with the same eigenvalues, so only
symmetric eigendecompositions are needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """d² between Gaussians fitted to the rows of `a` [N, D] and `b` [M, D], in float64."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = (np.atleast_2d(np.cov(x, rowvar=False, ddof=1)) for x in (a, b))
    root_a = _psd_sqrt(cov_a)
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sqrt(np.clip(cross, 0, None)).sum()
    value = ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root
    return float(max(value, 0.0))  # rounding can leave -1e-12 for identical sets


def _psd_sqrt(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def logits_and_features(classifier: Any, graph: Any, x: np.ndarray, batch: int = 500
                        ) -> tuple[np.ndarray, np.ndarray]:
    """A torch-trained classifier's logits for `x` and, from the same forward passes, the
    features its last layer reads (the penultimate activations)."""
    last = graph.layers[graph.nodes[graph.outputs[0]].layer]
    module = classifier.model.get_submodule(last.key(last.params[0]).rpartition(".")[0])
    features: list[np.ndarray] = []
    hook = module.register_forward_pre_hook(
        lambda _, args: features.append(args[0].detach().float().cpu().numpy()))
    try:
        logits = np.concatenate([classifier.predict({graph.input_names[0]: x[i:i + batch]})
                                 for i in range(0, len(x), batch)])
    finally:
        hook.remove()
    return logits, np.concatenate(features).reshape(len(x), -1)
