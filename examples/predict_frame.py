"""Predict many configurations at once from Python: one DataFrame row per question.

    python examples/predict_frame.py

Columns: platform (a name from `rdusim list` or a platform file), model, batch, tp, prompt, gen,
execution (None: the platform's fastest mode). predict() returns the frame with ttft_ms,
decode_ms_per_token, total_ms, weight_bytes, fits and reason added.
"""
from pathlib import Path

import pandas as pd

from rdusim.scenarios.predict import predict

MY_GPU = str(Path(__file__).with_name("my-gpu.yaml"))

frame = pd.DataFrame({
    "platform": ["dgx-h100", "dgx-h100", "sn40l-node", MY_GPU],
    "model": ["llama2-7b", "llama2-70b", "llama2-70b", "mistral-7b"],
    "batch": [1, 8, 8, 1],
    "tp": [8, 8, 8, 1],
    "prompt": [128, 512, 512, 128],
    "gen": [128, 128, 128, 128],
    "execution": [None, "cuda-graph", None, None],
})
result = predict(frame)
result["platform"] = result["platform"].map(lambda p: Path(p).stem)
print(result[["platform", "model", "batch", "execution", "ttft_ms", "decode_ms_per_token", "fits"]].to_string(index=False))
