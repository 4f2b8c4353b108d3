"""Wide, many-channel 1-D convolutions by the FFT, for the wild-type passes of the fast ISM and variant paths.

A stride-1, one-group ``conv1d`` of a padded input ``(B, C, Lp)`` with a kernel spanning ``K``
positions costs ``Lout × K × C × C'`` multiply-adds per sequence; through the FFT it is one
real FFT of the input (length ``n >= Lp``, no wrap-around reaches the kept outputs), a complex
``(C, C')`` product per frequency (``≈ 2 n × C × C'`` real multiply-adds) and one inverse FFT, so
for Basset's second layer (300 → 200 channels, width 11) it runs about 2.5× faster on a CPU.
The results differ from the direct convolution by float32 rounding (about 1e-7 of the output's
scale); callers check the model's outputs against plain forward passes before using them.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["conv1d_fast", "fft_conv1d"]

#: ``False``: :func:`conv1d_fast` always declines (direct convolutions, the model's own arithmetic; slower).
ENABLED = True

#: Kernel spectra per convolution and FFT length: ``(conv, weight version, n) → (n // 2 + 1, C, C')``.
_SPECTRA: dict[tuple[int, int], tuple[nn.Conv1d, int, torch.Tensor]] = {}


def _fast_size(n: int) -> int:
    """The smallest ``m >= n`` whose prime factors are 2, 3 and 5 (fast FFT lengths)."""
    m = n
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def conv1d_fast(conv: nn.Conv1d, x: torch.Tensor, pad_left: int = 0, pad_right: int = 0) -> torch.Tensor | None:
    """``conv`` on ``x`` zero-padded by ``pad_left``/``pad_right`` by :func:`fft_conv1d` where that is expected to
    beat ``conv1d`` (CPU, float32, stride 1, one group, at least 32 input and output channels, width 7 or more;
    measured: few input channels, such as a one-hot first layer, run faster directly), else ``None``."""
    if not ENABLED or x.device.type != "cpu" or x.dtype != torch.float32 or conv.stride[0] != 1 or conv.groups != 1:
        return None
    cout, cin, k = conv.weight.shape
    if cin >= 32 and cout >= 32 and k >= 7:
        return fft_conv1d(conv, x, pad_left, pad_right)
    return None


def _spectrum(conv: nn.Conv1d, n: int, dtype: torch.dtype) -> torch.Tensor:
    key = (id(conv), n)
    version = 0 if conv.weight.is_inference() else conv.weight._version
    hit = _SPECTRA.get(key)
    if hit is not None and hit[0] is conv and hit[1] == version and hit[2].dtype == torch.complex64:
        return hit[2]
    W = conv.weight.detach().to(dtype)
    d = conv.dilation[0]
    if d > 1:  # the dilated kernel: zeros between the taps
        k = W.shape[-1]
        Wd = torch.zeros(*W.shape[:2], (k - 1) * d + 1, dtype=W.dtype, device=W.device)
        Wd[..., ::d] = W
        W = Wd
    spec = torch.fft.rfft(W.flip(-1), n=n).permute(2, 1, 0).contiguous()  # (nb, C, C')
    if len(_SPECTRA) > 32:  # plans build new (folded) convolutions on every call
        _SPECTRA.clear()
    _SPECTRA[key] = (conv, version, spec)
    return spec


def fft_conv1d(conv: nn.Conv1d, x: torch.Tensor, pad_left: int = 0, pad_right: int = 0) -> torch.Tensor:
    """``conv`` (stride 1, one group, its own padding ignored) on ``x`` ``(B, C, Lin)`` zero-padded by ``pad_left`` and
    ``pad_right`` → ``(B, C', Lout)``, as ``F.conv1d(F.pad(x, (pad_left, pad_right)), W, b, dilation=d)``.

    ``Lout = Lin + pad_left + pad_right - K + 1`` with ``K = (k - 1) × dilation + 1``. The padding is never
    materialised: the FFT's own zero extension provides it (``n >= Lin + max(pad_left, pad_right)``), and the
    bias enters as the zero-frequency term.
    """
    span = (conv.kernel_size[0] - 1) * conv.dilation[0] + 1
    if pad_left > span - 1:  # the first kept output would lie before the input: pad explicitly
        x = torch.nn.functional.pad(x, (pad_left, pad_right))
        pad_left = pad_right = 0
    lin = x.shape[-1]
    lout = lin + pad_left + pad_right - span + 1
    n = _fast_size(lin + max(pad_left, pad_right))
    spec = _spectrum(conv, n, x.dtype)
    Xf = torch.fft.rfft(x, n=n).permute(2, 0, 1)  # (nb, B, C)
    Yf = torch.matmul(Xf, spec)  # (nb, B, C')
    if conv.bias is not None:
        Yf[0] += conv.bias.to(x.dtype) * n  # a constant output: the zero-frequency term (irfft divides by n)
    m0 = span - 1 - pad_left
    return torch.fft.irfft(Yf.permute(1, 2, 0), n=n)[..., m0 : m0 + lout].contiguous()
