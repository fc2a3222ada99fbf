"""Spectral summaries of a representation: how many directions carry its variance.

Every function here takes a matrix ``X`` of shape (n_samples, n_features), rows being
samples, and works on the eigenvalues of the sample covariance of the column-centred
matrix,

    λ_i = σ_i² / (n − 1),   σ_i the singular values of X − mean(X, axis=0),

in descending order. There are min(n, d) of them (at most n − 1 are non-zero).

Numerical conventions
---------------------
One decomposition
    All five metrics come from ONE symmetric eigendecomposition (``eigvalsh``) of the
    smaller of the n×n Gram matrix Xc Xcᵀ and the d×d scatter matrix XcᵀXc, formed and
    accumulated in float64 whatever the input precision. A torch tensor is processed on
    its own device (Apple ``mps`` has no float64, so it is moved to the CPU) and only the
    final numbers are copied to the host, once.
Scale invariance
    Before the Gram matrix is formed, the data are shifted by their first row (this
    removes a large common offset exactly, so constant rows centre to exact zeros) and
    divided by a power of two close to max|X − X[0]| (exact, so ``X * 2**k`` gives
    bit-identical ratios). Rank-like metrics are therefore identical for any scale whose
    squares do not leave the float64 range (tested from 1e-30 to 1e30).
    :func:`spectrum` returns eigenvalues in squared data units.
Constant features (zero variance)
    A feature whose sample standard deviation is at most ``16 * eps * max_i |X_ij|``
    (``eps`` the machine epsilon of the *input* dtype: 2.2e-16 for float64, 1.2e-7 for
    float32 and for float16/bfloat16, which are upcast to float32) is constant up to
    rounding, and its residue is set to zero. If every feature is constant the
    representation has zero variance and every rank-like metric is exactly 0.0: total
    collapse is a real measurement, not an error.
Rounding-noise eigenvalues
    Eigenvalues that are negative, or below ``λ_max * max(n, d) * eps64`` (the backward
    error of forming and diagonalising the Gram matrix in float64), are set to 0 before
    any metric is computed, and so are singular values at or below the typical size of
    the input's own rounding noise, σ_i <= u·rms(X)·(√n + √d) (u = eps/2 the unit
    roundoff of the input dtype, rms over the uncentred entries of the non-constant
    features, d their number): that is the largest singular value of a random n×d
    matrix of rounding errors (Bai-Yin), so such σ_i cannot be told from 0. Without
    this, the rounding of float32 data adds dozens of σ ~ 1e-6·σ_max that shift the
    σ-based metrics (effective rank, nuclear-norm ratio) by ~1e-3, and float64 noise
    eigenvalues of order 1e-16·λ_max add √1e-16 each. The floor is a single number, so
    for float32 features whose magnitudes differ by more than ~1e5 it can also clear
    real directions of the small features that are weaker than the big ones' rounding.
Precision
    float32 and float64 versions of the same data agree to a relative 1e-5 (tested); the
    difference is the float32 rounding of the data, not of the computation.

References
----------
.. [1] Gao, P., Trautmann, E., Yu, B., Santhanam, G., Ryu, S., Shenoy, K. & Ganguli, S.
   (2017). A theory of multineuronal dimensionality, dynamics and measurement.
   bioRxiv 214262 (participation ratio).
.. [2] Roy, O. & Vetterli, M. (2007). The effective rank: a measure of effective
   dimensionality. EUSIPCO, 606-610.
.. [3] Rudelson, M. & Vershynin, R. (2007). Sampling from large matrices: an approach
   through geometric functional analysis. J. ACM 54(4) (stable rank).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from scipy.special import xlogy

from traindyn._validation import Array, as_2d_float, check_min_samples
from traindyn.exceptions import ConfigError

__all__ = [
    "SPECTRAL_METRICS",
    "effective_rank",
    "energy_rank",
    "nuclear_norm_ratio",
    "participation_ratio",
    "spectral_metrics",
    "spectrum",
    "stable_rank",
]

SPECTRAL_METRICS: tuple[str, ...] = (
    "participation_ratio",
    "effective_rank",
    "stable_rank",
    "energy_rank",
    "nuclear_norm_ratio",
)
"""Names of the metrics returned by :func:`spectral_metrics`, in order."""

# A feature whose spread is within this many epsilons of its magnitude is constant up to
# rounding: a collapsed float32 layer computed in different batch positions differs by a
# few ulps per entry, and must read as collapsed rather than as isotropic noise.
_CONSTANT_FEATURE_ULPS = 16.0
_EPS64 = float(np.finfo(np.float64).eps)


def _input_eps(X: Array) -> float:
    """Machine epsilon of the dtype ``X`` arrived in (after ``as_2d_float``)."""
    if isinstance(X, torch.Tensor):
        return float(torch.finfo(X.dtype).eps)
    return float(np.finfo(X.dtype).eps)


def _as_float64_tensor(X: Array) -> torch.Tensor:
    """Clean 2-D input as a float64 tensor; no copy for float64 numpy on the CPU."""
    if isinstance(X, torch.Tensor):
        if X.device.type == "mps":  # Metal has no float64
            X = X.cpu()
        return X.to(torch.float64)
    # "W": torch.from_numpy warns on read-only arrays, so those are copied.
    return torch.from_numpy(np.require(X, dtype=np.float64, requirements=["C", "W"]))


def _pow2_scale(m: torch.Tensor) -> torch.Tensor:
    """The power of two 2**e with m <= 2**e < 2m (1 where m == 0): exact to divide by."""
    _, exponent = torch.frexp(torch.where(m > 0, m, torch.ones_like(m)))
    return torch.ldexp(torch.ones_like(m), exponent)


def _centred_scaled(X: Array) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Guts: column-centred float64 copy of clean ``X``, divided by a power of two.

    No input validation. Returns ``(Z, s, floor)`` with ``Z * s`` the centred data and
    ``floor`` the size of the input's rounding noise in the units of Z (see the module
    docstring). Features that are constant up to rounding are exactly zero in Z.
    """
    eps_in = _input_eps(X)
    T = _as_float64_tensor(X)
    n = T.shape[0]
    # Few passes over the matrix (this runs on the tracker's worker at every sample):
    # min/max per column without temporaries, then one float64 copy updated in place.
    lo, hi = torch.aminmax(T, dim=0)
    col_max = torch.maximum(hi.abs(), lo.abs())
    # Two exact power-of-two rescalings: the first keeps X - X[0] from overflowing near
    # the float64 limit, the second brings the spread to O(1) whatever the offset.
    s1 = _pow2_scale(col_max.amax())
    Z = T / s1  # the copy we own (T may be the caller's float64 array)
    col_sq = torch.linalg.vector_norm(Z, dim=0) ** 2  # before centring, for the noise floor
    Z.sub_(Z[:1].clone())  # removes a common offset exactly; constant rows become zeros
    x0 = T[0] / s1  # vectors only: exact scaling, no overflow near the float64 limit
    s2 = _pow2_scale(torch.maximum((hi / s1 - x0).amax(), (x0 - lo / s1).amax()))
    Z.div_(s2)
    Z.sub_(Z.mean(dim=0, keepdim=True))
    spread = torch.linalg.vector_norm(Z, dim=0) / (max(n - 1, 1) ** 0.5)
    allowance = _CONSTANT_FEATURE_ULPS * eps_in * (col_max / s1) / s2
    flat = spread <= allowance
    if bool(flat.any()):
        Z[:, flat] = 0.0
    # Typical largest singular value of the input's rounding noise (entries of size
    # u·|x|, u = eps/2) over the non-constant features: rms·u·(√n + √d), Bai-Yin.
    kept = (~flat).sum().clamp(min=1)
    rms = torch.sqrt(torch.where(flat, 0.0, col_sq).sum() / (n * kept))
    floor = 0.5 * eps_in * rms * (n**0.5 + torch.sqrt(kept)) / s2
    return Z, s1 * s2, floor


def _eigvals_guts(X: Array) -> tuple[torch.Tensor, torch.Tensor]:
    """Guts of :func:`spectrum`: one ``eigvalsh``; no input validation.

    Returns ``(lam, s)``: covariance eigenvalues of ``X / s`` in descending order with
    rounding noise set to 0 (length min(n, d), float64, on the device of ``X``), and the
    power-of-two scale ``s`` (a 0-d tensor) so that the eigenvalues of X are lam * s**2.
    """
    Z, s, floor = _centred_scaled(X)
    n, d = Z.shape
    M = Z @ Z.T if n <= d else Z.T @ Z
    sq = torch.linalg.eigvalsh(M).flip(0)  # σ_i², descending
    tol = torch.maximum(sq[0].clamp(min=0.0) * (max(n, d) * _EPS64), floor**2)
    sq = torch.where(sq > tol, sq, torch.zeros_like(sq))
    return sq / (n - 1), s


# The five metrics are cheap functions of the spectrum: computed in numpy after ONE
# transfer of the eigenvalues, because ~10 numpy calls on a short vector cost less than
# ~40 small torch calls (this runs on the tracker's worker at every sample).


def _host(lam: torch.Tensor) -> NDArray[np.float64]:
    """The eigenvalues on the host: the one transfer of a spectral computation."""
    host: NDArray[np.float64] = lam.detach().cpu().numpy()
    return host


def _safe_div(num: float, den: float) -> float:
    """num / den, and 0 where den == 0 (the zero-variance convention)."""
    return num / den if den > 0 else 0.0


def _pr(lam: NDArray[np.float64]) -> float:
    return _safe_div(float(lam.sum()) ** 2, float(np.dot(lam, lam)))


def _effective_rank(lam: NDArray[np.float64]) -> float:
    sig = np.sqrt(lam)
    total = float(sig.sum())
    if total <= 0:
        return 0.0
    p = sig / total
    return float(np.exp(-xlogy(p, p).sum()))


def _stable_rank(lam: NDArray[np.float64]) -> float:
    return _safe_div(float(lam.sum()), float(lam[0]))


def _energy_rank(lam: NDArray[np.float64], q: float) -> float:
    cum = np.cumsum(lam)
    total = float(cum[-1])
    if total <= 0:
        return 0.0
    # Partial sums that fall short of q·total only by rounding count as reaching it, so
    # ties such as q=0.5 on a flat spectrum resolve to the smaller k.
    target = q * total - lam.shape[0] * _EPS64 * total
    return float(np.count_nonzero(cum < target) + 1)


def _nuclear_norm_ratio(lam: NDArray[np.float64]) -> float:
    sig = np.sqrt(lam)
    return _safe_div(float(sig.sum()), float(sig[0]))


def _check_q(q: float) -> None:
    if isinstance(q, bool) or not isinstance(q, int | float) or not 0.0 < q <= 1.0:
        raise ConfigError(
            f"q must be a number in (0, 1]; got {q!r}. It is the fraction of the total "
            "variance that the leading components must reach (0.9 = 90%)."
        )


def _spectral_guts(X: Array, q: float = 0.9) -> dict[str, float]:
    """Guts of :func:`spectral_metrics`; no input validation (n >= 2, finite, 2-D)."""
    lam = _host(_eigvals_guts(X)[0])  # one transfer
    values = (
        _pr(lam),
        _effective_rank(lam),
        _stable_rank(lam),
        _energy_rank(lam, q),
        _nuclear_norm_ratio(lam),
    )
    return dict(zip(SPECTRAL_METRICS, values, strict=True))


def _validated(X: Any) -> Array:
    A = as_2d_float(X)
    check_min_samples(A, 2, what="a covariance spectrum")
    return A


def spectrum(X: Any) -> NDArray[np.float64]:
    """Covariance eigenvalues of the column-centred ``X``, in descending order.

    Parameters
    ----------
    X : ndarray or torch.Tensor of shape (n_samples, n_features)
        Rows are samples. Any float dtype; torch tensors stay on their device.

    Returns
    -------
    ndarray of shape (min(n_samples, n_features),), float64
        λ_i = σ_i² / (n − 1) in squared units of X, σ_i the singular values of the
        centred matrix. Rounding noise (negative eigenvalues, eigenvalues below
        λ_max·max(n, d)·eps, singular values below the input's rounding noise) and
        constant features are set to 0; see the module docstring. All zeros for a
        representation with zero variance.

    Raises
    ------
    MetricError
        If X is not 2-D, has fewer than 2 samples, or holds NaN/Inf.

    Examples
    --------
    Orthogonal columns with squared norms 8 and 2 give eigenvalues 8/3 and 2/3:

    >>> import numpy as np
    >>> X = np.vstack([np.diag([2.0, 1.0]), -np.diag([2.0, 1.0])])
    >>> spectrum(X) * 3
    array([8., 2.])
    """
    lam, s = _eigvals_guts(_validated(X))
    out: NDArray[np.float64] = (lam * s**2).cpu().numpy()
    return out


def spectral_metrics(X: Any, *, q: float = 0.9) -> dict[str, float]:
    """All five spectral metrics of ``X`` from one eigendecomposition.

    Parameters
    ----------
    X : ndarray or torch.Tensor of shape (n_samples, n_features)
        Rows are samples. Any float dtype; torch tensors stay on their device and only
        the five numbers are copied to the host.
    q : float in (0, 1], default 0.9
        Variance fraction for ``energy_rank``.

    Returns
    -------
    dict of str to float
        Keys ``participation_ratio, effective_rank, stable_rank, energy_rank,
        nuclear_norm_ratio`` (:data:`SPECTRAL_METRICS`, the registry names), each as
        defined by the function of the same name. All 0.0 for zero variance.

    Raises
    ------
    MetricError
        If X is not 2-D, has fewer than 2 samples, or holds NaN/Inf.
    ConfigError
        If q is not in (0, 1].

    References
    ----------
    See the module docstring.

    Examples
    --------
    Three orthogonal directions of equal variance:

    >>> import numpy as np
    >>> X = np.vstack([np.eye(3), -np.eye(3)])
    >>> {k: round(v, 10) for k, v in spectral_metrics(X).items()}  # doctest: +NORMALIZE_WHITESPACE
    {'participation_ratio': 3.0, 'effective_rank': 3.0, 'stable_rank': 3.0,
     'energy_rank': 3.0, 'nuclear_norm_ratio': 3.0}
    """
    _check_q(q)
    return _spectral_guts(_validated(X), q)


def participation_ratio(X: Any) -> float:
    """Participation ratio (Σλ)² / Σλ² of the covariance spectrum.

    Equals k for k directions of equal variance and 1 for a single direction; it is
    dominated by the largest eigenvalues.

    Parameters
    ----------
    X : ndarray or torch.Tensor of shape (n_samples, n_features)
        Rows are samples.

    Returns
    -------
    float
        In [1, min(n − 1, d)], or 0.0 for zero variance.

    Raises
    ------
    MetricError
        If X is not 2-D, has fewer than 2 samples, or holds NaN/Inf.

    References
    ----------
    .. [1] Gao, P., Trautmann, E., Yu, B., Santhanam, G., Ryu, S., Shenoy, K. & Ganguli,
       S. (2017). A theory of multineuronal dimensionality, dynamics and measurement.
       bioRxiv 214262.

    Examples
    --------
    Eigenvalues proportional to (8, 2): (8 + 2)² / (8² + 2²) = 100/68.

    >>> import numpy as np
    >>> X = np.vstack([np.diag([2.0, 1.0]), -np.diag([2.0, 1.0])])
    >>> bool(np.isclose(participation_ratio(X), 100 / 68))
    True
    """
    lam, _ = _eigvals_guts(_validated(X))
    return _pr(_host(lam))


def effective_rank(X: Any) -> float:
    """Effective rank exp(−Σ p_i log p_i) with p_i = σ_i / Σσ (Roy & Vetterli 2007).

    σ_i are the singular values of the centred matrix (equivalently √λ_i; the ratio is
    unaffected by the 1/(n − 1) factor). Terms with p_i = 0 contribute 0.

    Parameters
    ----------
    X : ndarray or torch.Tensor of shape (n_samples, n_features)
        Rows are samples.

    Returns
    -------
    float
        In [1, min(n − 1, d)], or 0.0 for zero variance.

    Raises
    ------
    MetricError
        If X is not 2-D, has fewer than 2 samples, or holds NaN/Inf.

    References
    ----------
    .. [1] Roy, O. & Vetterli, M. (2007). The effective rank: a measure of effective
       dimensionality. 15th European Signal Processing Conference (EUSIPCO), 606-610.

    Examples
    --------
    Singular values proportional to (2, 1): p = (2/3, 1/3).

    >>> import numpy as np
    >>> X = np.vstack([np.diag([2.0, 1.0]), -np.diag([2.0, 1.0])])
    >>> p = np.array([2 / 3, 1 / 3])
    >>> bool(np.isclose(effective_rank(X), np.exp(-(p * np.log(p)).sum())))
    True
    """
    lam, _ = _eigvals_guts(_validated(X))
    return _effective_rank(_host(lam))


def stable_rank(X: Any) -> float:
    """Stable rank Σλ / λ_max = ||Xc||_F² / ||Xc||_2².

    Parameters
    ----------
    X : ndarray or torch.Tensor of shape (n_samples, n_features)
        Rows are samples.

    Returns
    -------
    float
        In [1, min(n − 1, d)], or 0.0 for zero variance.

    Raises
    ------
    MetricError
        If X is not 2-D, has fewer than 2 samples, or holds NaN/Inf.

    References
    ----------
    .. [1] Rudelson, M. & Vershynin, R. (2007). Sampling from large matrices: an
       approach through geometric functional analysis. Journal of the ACM 54(4), 21.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.vstack([np.diag([2.0, 1.0]), -np.diag([2.0, 1.0])])
    >>> round(stable_rank(X), 12)  # (8 + 2) / 8
    1.25
    """
    lam, _ = _eigvals_guts(_validated(X))
    return _stable_rank(_host(lam))


def energy_rank(X: Any, *, q: float = 0.9) -> float:
    """Smallest k whose leading eigenvalues hold a fraction ``q`` of the variance.

    k = min{k : Σ_{i≤k} λ_i ≥ q Σλ}. A partial sum that falls short only by rounding
    (by less than min(n, d)·eps·Σλ) counts as reaching the target, so exact ties such as
    q = 0.5 on a flat spectrum resolve to the smaller k.

    Parameters
    ----------
    X : ndarray or torch.Tensor of shape (n_samples, n_features)
        Rows are samples.
    q : float in (0, 1], default 0.9
        Fraction of the total variance.

    Returns
    -------
    float
        An integer count returned as a float (so every metric has one type), in
        [1, min(n, d)], or 0.0 for zero variance.

    Raises
    ------
    MetricError
        If X is not 2-D, has fewer than 2 samples, or holds NaN/Inf.
    ConfigError
        If q is not in (0, 1].

    References
    ----------
    .. [1] Jolliffe, I. T. (2002). Principal Component Analysis, 2nd ed., Springer,
       §6.1.1 (cumulative percentage of total variation).

    Examples
    --------
    Eigenvalues proportional to (8, 2): the first holds 80% of the variance.

    >>> import numpy as np
    >>> X = np.vstack([np.diag([2.0, 1.0]), -np.diag([2.0, 1.0])])
    >>> energy_rank(X, q=0.75), energy_rank(X, q=0.9)
    (1.0, 2.0)
    """
    _check_q(q)
    lam, _ = _eigvals_guts(_validated(X))
    return _energy_rank(_host(lam), q)


def nuclear_norm_ratio(X: Any) -> float:
    """Nuclear-norm ratio Σσ_i / σ_max of the centred matrix.

    Parameters
    ----------
    X : ndarray or torch.Tensor of shape (n_samples, n_features)
        Rows are samples.

    Returns
    -------
    float
        In [1, min(n − 1, d)], or 0.0 for zero variance.

    Raises
    ------
    MetricError
        If X is not 2-D, has fewer than 2 samples, or holds NaN/Inf.

    References
    ----------
    .. [1] Horn, R. A. & Johnson, C. R. (2013). Matrix Analysis, 2nd ed., Cambridge
       University Press (nuclear and spectral norms; the ratio is a continuous rank).

    Examples
    --------
    Singular values proportional to (2, 1):

    >>> import numpy as np
    >>> X = np.vstack([np.diag([2.0, 1.0]), -np.diag([2.0, 1.0])])
    >>> round(nuclear_norm_ratio(X), 12)
    1.5
    """
    lam, _ = _eigvals_guts(_validated(X))
    return _nuclear_norm_ratio(_host(lam))
