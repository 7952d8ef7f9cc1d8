"""Deprecated import path, kept for existing users: the code lives in :mod:`rdusim.scenarios.predict`
(see CHANGELOG.md, 0.2.0)."""
from rdusim.scenarios.predict import predict, predict_one, use_gpu_constants

__all__ = ["predict", "predict_one", "use_gpu_constants"]
