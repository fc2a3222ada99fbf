"""Similarity between two representations of the same inputs: linear CKA.

Centred kernel alignment compares X (n_samples, d_x) and Y (n_samples, d_y) whose rows
are the SAME n inputs in the same order; the feature counts may differ. Linear CKA is
invariant to orthogonal transformations and isotropic scaling of either representation,
but not to arbitrary invertible linear maps.

Conventions
-----------
Features are centred over the samples and computed in float64 (after an exact
power-of-two rescaling, so any scale of X or Y gives the same value); a torch tensor is
processed on its device and only the final number is copied to the host (Y is moved to
X's device if they differ). Features that are constant up to rounding are treated as
constant, as in :mod:`traindyn.metrics.spectral`.

References
----------
.. [1] Kornblith, S., Norouzi, M., Lee, H. & Hinton, G. (2019). Similarity of neural
   network representations revisited. ICML, PMLR 97, 3519-3529.
.. [2] Song, L., Smola, A., Gretton, A., Bedo, J. & Borgwardt, K. (2012). Feature
   selection via dependence maximization. JMLR 13, 1393-1434 (unbiased HSIC).
.. [3] Nguyen, T., Raghu, M. & Kornblith, S. (2021). Do wide and deep networks learn the
   same things? Uncovering how neural network representations vary with width and
   depth. ICLR (debiased CKA).
"""

from __future__ import annotations

from typing import Any

import torch

from traindyn._validation import as_2d_float, check_min_samples
from traindyn.exceptions import MetricError
from traindyn.metrics.spectral import _centred_scaled

__all__ = ["linear_cka"]


def _debias(
    xty: torch.Tensor,
    rx: torch.Tensor,
    ry: torch.Tensor,
    tx: torch.Tensor,
    ty: torch.Tensor,
    n: int,
) -> torch.Tensor:
    """n(n − 3)·HSIC_1 for centred features from tr(KL), diag(K), diag(L), tr K, tr L.

    The unbiased HSIC of Song et al. (2012, eq. 5) rewritten for centred linear kernels
    (1ᵀK = 0), as in the reference code of Kornblith et al. (2019).
    """
    return xty - n / (n - 2.0) * (rx @ ry) + tx * ty / ((n - 1.0) * (n - 2.0))


def linear_cka(X: Any, Y: Any, *, debiased: bool = False) -> float:
    """Linear centred kernel alignment between two representations of the same inputs.

    With column-centred X and Y, K = XXᵀ and L = YYᵀ,

        CKA = ⟨K, L⟩_F / (||K||_F ||L||_F) = ||YᵀX||_F² / (||XᵀX||_F ||YᵀY||_F),

    computed in feature space or sample space, whichever is cheaper. With
    ``debiased=True`` each HSIC term is replaced by the unbiased estimator HSIC_1 of
    Song et al. (2012), as in Nguyen, Raghu & Kornblith (2021); it corrects the upward
    bias of CKA when features outnumber samples.

    Parameters
    ----------
    X : ndarray or torch.Tensor of shape (n_samples, n_features_x)
        First representation; rows are inputs.
    Y : ndarray or torch.Tensor of shape (n_samples, n_features_y)
        Second representation of the same inputs, in the same order.
    debiased : bool, default False
        Use the unbiased HSIC estimator (needs at least 4 samples).

    Returns
    -------
    float
        In [0, 1] up to rounding for the biased estimator; the debiased one can be
        slightly negative for unrelated representations.

    Raises
    ------
    MetricError
        If X or Y is not 2-D or holds NaN/Inf, they differ in n_samples, there are
        fewer than 2 samples (4 when debiased), a representation has zero variance
        (CKA is 0/0), or the debiased self-similarity of X or Y is not positive.

    References
    ----------
    .. [1] Kornblith, S., Norouzi, M., Lee, H. & Hinton, G. (2019). Similarity of
       neural network representations revisited. ICML, PMLR 97, 3519-3529.
    .. [2] Song, L., Smola, A., Gretton, A., Bedo, J. & Borgwardt, K. (2012). Feature
       selection via dependence maximization. JMLR 13, 1393-1434.
    .. [3] Nguyen, T., Raghu, M. & Kornblith, S. (2021). Do wide and deep networks learn
       the same things? ICLR.

    Examples
    --------
    Invariant to rotation and scaling; zero between orthogonal signals:

    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    >>> R = np.array([[0.6, -0.8], [0.8, 0.6]])
    >>> round(linear_cka(X, 3 * X @ R), 12)
    1.0
    >>> linear_cka(X[:, :1], X[:, 1:])
    0.0
    """
    A = as_2d_float(X, name="X")
    B = as_2d_float(Y, name="Y")
    n = int(A.shape[0])
    if int(B.shape[0]) != n:
        raise MetricError(
            f"Y must have the same number of samples as X ({n}); got {int(B.shape[0])}. "
            "Rows are inputs: pass both layers' activations on the same probe, in order."
        )
    check_min_samples(
        A, 4 if debiased else 2, what="debiased linear_cka" if debiased else "linear_cka"
    )
    Zx, _, _ = _centred_scaled(A)
    Zy, _, _ = _centred_scaled(B)
    Zy = Zy.to(Zx.device)
    dx, dy = Zx.shape[1], Zy.shape[1]
    if dx * dy + dx * dx + dy * dy <= n * (dx + dy + 1):
        xty = torch.linalg.matrix_norm(Zy.T @ Zx) ** 2
        kk = torch.linalg.matrix_norm(Zx.T @ Zx) ** 2
        ll = torch.linalg.matrix_norm(Zy.T @ Zy) ** 2
    else:
        K, L = Zx @ Zx.T, Zy @ Zy.T
        xty, kk, ll = (K * L).sum(), (K * K).sum(), (L * L).sum()
    if debiased:
        rx, ry = (Zx * Zx).sum(dim=1), (Zy * Zy).sum(dim=1)
        tx, ty = rx.sum(), ry.sum()
        xty = _debias(xty, rx, ry, tx, ty, n)
        kk = _debias(kk, rx, rx, tx, tx, n)
        ll = _debias(ll, ry, ry, ty, ty, n)
    num, den_x, den_y = torch.stack([xty, kk, ll]).cpu().tolist()  # one transfer
    for name, den in (("X", den_x), ("Y", den_y)):
        if den <= 0.0:
            what = (
                "a positive debiased self-similarity (HSIC_1) for linear_cka; got "
                f"{den!r}. Use more samples or debiased=False."
                if debiased and den != 0.0
                else "non-zero variance for linear_cka; got a constant representation "
                "(CKA is 0/0). Check for a collapsed layer."
            )
            raise MetricError(f"{name} must have {what}")
    return float(num / (den_x**0.5 * den_y**0.5))
