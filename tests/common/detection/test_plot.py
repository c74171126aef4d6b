"""The result drawn as a PNG."""

from __future__ import annotations

import io

import numpy as np

from common.detection import detect
from common.detection.plot import render_png
from common.methods import MethodSettings


def test_render_png() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(0, 1, 600)
    values[400] += 12
    times = 1_714_521_600_000 + 300_000 * np.arange(600)
    result = detect(values, times, MethodSettings(window=40, online=True, method="rolling"))
    png = render_png(times, values, result, title="cpu")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    from matplotlib import image

    pixels = image.imread(io.BytesIO(png))
    assert pixels.shape[:2] == (450, 1200)
    # Red dots drawn: some pixels are the anomaly colour (tab:red, #d62728).
    red = (pixels[..., 0] > 0.8) & (pixels[..., 1] < 0.25) & (pixels[..., 2] < 0.25)
    assert red.sum() > 20
