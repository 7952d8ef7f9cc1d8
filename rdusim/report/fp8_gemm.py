"""The GPU model's FP8 matmul efficiency relative to BF16, fitted to TensorRT-LLM v0.5's H100 FP8 times.

The rows of ``rdusim/data/public_checks.yaml`` whose ``fitted_constant`` is
``fp8_gemm_efficiency_vs_bf16_fraction`` (TensorRT-LLM v0.5 performance page, via
``shared/reference/sn40l_public_facts.md``: batch-1 time to first token of Llama-2-7B on one H100 and
Llama-2-70B on four, 128 and 2048 prompt tokens, FP8) are predicted with the constant set to each trial
value (:class:`baselines.gpu.GpuConstants`, everything else packaged); the fitted value minimises the sum
of squared log errors over those rows (bounded scalar search in [0.05, 1]). The 128-token passes stream
their weights (their time does not move until the constant falls below about 0.45), so the 2048-token
passes set the value; the residuals of all rows are printed.

``python -m rdusim.report.fp8_gemm --write`` refits and writes the value into
``baselines/data/gpu_constants.yaml``; run it after the GPU calibration (``baselines.calibration``) and
the stacks' fits (``rdusim.report.gpu_validation``), whose constants it holds fixed.
"""
from __future__ import annotations

import argparse
import math

import pandas as pd
from scipy.optimize import minimize_scalar

from baselines.gpu import CONSTANTS_FILE, FORMAT_GEMM_EFFICIENCIES, GpuConstants, clear_constants_cache
from rdusim.core.errors import ConfigError
from rdusim.core.yamltext import replace_number
from rdusim.report.speculative import load_checks
from rdusim.scenarios.predict import predict_one

CONSTANT = "fp8_gemm_efficiency_vs_bf16_fraction"
BOUNDS = (0.05, 1.0)


def fit_rows() -> list[dict]:
    """The public-check rows the constant is fitted to (those naming it as ``fitted_constant``)."""
    return [r for r in load_checks() if r.get("fitted_constant") == CONSTANT]


def predicted(value: float, rows: list[dict] | None = None) -> list[float]:
    """Each fit row's predicted metric with the FP8 efficiency set to ``value`` (other constants packaged)."""
    const = GpuConstants.load().with_fitted({FORMAT_GEMM_EFFICIENCIES[CONSTANT]: float(value)})
    return [float(predict_one(**r["request"], constants=const)[r.get("metric", "ttft_ms")]) for r in rows or fit_rows()]


def loss(value: float, rows: list[dict] | None = None) -> float:
    """Sum over the fit rows of ``log(predicted / published)^2``."""
    rows = rows or fit_rows()
    return sum(math.log(p / float(r["published"])) ** 2 for p, r in zip(predicted(value, rows), rows))


def fit_fp8_efficiency() -> float:
    """The value (4 decimals) minimising :func:`loss` over the fit rows."""
    rows = fit_rows()
    if not rows:
        raise ConfigError("public_checks rows", [], f"at least one row with fitted_constant {CONSTANT}")
    res = minimize_scalar(lambda v: loss(v, rows), bounds=BOUNDS, method="bounded", options={"xatol": 1e-5})
    return round(float(res.x), 4)


def fit_table(value: float) -> pd.DataFrame:
    """The fit rows: published, predicted at ``value`` and at 1 (the datasheet's 2x), relative errors."""
    rows = fit_rows()
    at, before = predicted(value, rows), predicted(1.0, rows)
    return pd.DataFrame([{"id": r["id"], "published": r["published"], "predicted": p, "error": p / r["published"] - 1,
                          "predicted_at_1": b, "error_at_1": b / r["published"] - 1}
                         for r, p, b in zip(rows, at, before)])


def write_value(value: float) -> None:
    """Replace the constant's value in ``gpu_constants.yaml`` (comments kept)."""
    text = CONSTANTS_FILE.read_text()
    new = replace_number(text, rf"\n  {CONSTANT}: ", f"{value:.4f}", f"{CONSTANTS_FILE}: {CONSTANT}")
    CONSTANTS_FILE.write_text(new)
    clear_constants_cache()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write the fitted {CONSTANT} to gpu_constants.yaml")
    args = parser.parse_args(argv)
    value = fit_fp8_efficiency()
    print(f"{CONSTANT} fitted to {len(fit_rows())} rows: {value:.4f}")
    print(fit_table(value).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    if args.write:
        write_value(value)
        print(f"wrote {CONSTANTS_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
