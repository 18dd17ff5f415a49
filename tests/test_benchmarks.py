"""The benchmarks run (at a tiny size; no timing is asserted)."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_train_step_benchmark_runs_at_a_tiny_size():
    spec = importlib.util.spec_from_file_location("train_step", ROOT / "benchmarks" / "train_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = module.main(["--tiny"])
    for model in ("PixelCNN", "Transformer", "GridVAE", "VQ-VAE ema_restart"):
        assert f"\n{model} (" in report
    assert report.count("today (fp32)") == 4 and report.count("bf16 autocast") == 4
