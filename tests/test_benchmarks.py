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


def test_prior_convergence_scores_an_end_to_end_generator_at_a_tiny_size(tmp_path):
    """``--vae vqvae``: a VQ-VAE trained at a K off the book's grid, its prior, samples through its own
    decoder, and the reconstructions' FD beside the samples' (an empty artifacts folder: the classifier is
    trained here)."""
    import torch

    spec = importlib.util.spec_from_file_location("prior_convergence", ROOT / "benchmarks" / "prior_convergence.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()  # --threads sets the process's torch threads: given back after
    try:
        report = module.main(["--artifacts", str(tmp_path), "--threads", "1", "--vae", "vqvae", "--method", "ema",
                              "--k", "8", "--temperatures", "1.0", "--n", "100", "--max-epochs", "1", "--set",
                              "data.n_train=500", "data.n_val=200", "data.n_test=200", "vqvae.max_epochs=1",
                              "quantize.n_landmarks=2000",  # a valid book: 500 FlatVAE images give 8,000 vectors
                              "comparison.classifier_max_epochs=1", "prior.pixelcnn_channels=8"])
    finally:
        torch.set_num_threads(threads)
    assert "VQ-VAE ema K = 8: 1 epochs" in report and "pixelcnn (bf16) on vqvae_ema_K8" in report
    assert "reconstructions (the test images through the codes and decoder): FD " in report
    assert "classifier: trained here" in report and "\nT = 1.0  FD " in report


def test_the_nhwc_candidate_computes_the_pixelcnns_own_logits():
    """benchmarks/train_step.py's matrix-product candidate is the same function with the same parameters."""
    import torch

    from geohelpers.models.pixelcnn import GatedPixelCNN

    spec = importlib.util.spec_from_file_location("train_step", ROOT / "benchmarks" / "train_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    for shape in ((7, 7), (16,)):
        model = GatedPixelCNN(32, shape, 8, 3)
        codes = torch.randint(0, 32, (5, *shape))
        with torch.no_grad():
            grid = codes.view(5, *model.grid)
            conv = model._logit_map(grid).permute(0, 2, 3, 1)
            assert torch.allclose(module.nhwc_logit_map(model, grid), conv, atol=1e-5)
            assert torch.allclose(module.nhwc_loss(model)((codes,))[0], model.loss((codes,))[0], atol=1e-5)
