"""One prior stage of the book, trained to its stopping rule both ways: today's bf16 step against the same
step under ``torch.compile`` (``prior.compile``), side by side.

The inputs are the standard profile's own: the GridVAE, its K-means codebook at ``--k`` and the code maps
of the training, validation and test images, built (or loaded) in ``--home`` through the book's stages.
Then the stage ``geohelpers.stages.priors.train_prior`` runs twice at once, in two processes of one torch
thread each (as the stage graph's workers run), once per setting of ``prior.compile``; each reports its
epochs, the stop, its seconds (compile's warm-up included: a stage pays it once) and its test NLL.

    python benchmarks/prior_stage_compile.py --home /tmp/geovq-prior-stage --out benchmarks/results/prior_stage_compile.txt
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build_inputs(k: int) -> str:
    """The standard GridVAE, its K-means codebook at ``k`` and the code maps (built or loaded); their name."""
    import torch

    from geohelpers import data, stages
    from geohelpers.config import resolve

    torch.set_num_threads(1)
    cfg = resolve("standard")
    mnist = data.load_mnist(cfg.data)
    vae = stages.vaes.train_vae("grid", cfg, mnist).model
    lat = stages.vaes.encode_splits({"grid": vae}, mnist, cfg)["grid"]
    cb, _ = stages.codebooks.fit_codebook("grid", "kmeans", k, cfg, lat["train"])
    name = f"grid_kmeans_K{k}"
    stages.codes.encode_and_save_codes(cb, vae, lat, name, cfg)
    return name


def train_one(name: str, k: int, compiled: bool) -> dict:
    """The prior stage on the code set ``name`` with ``prior.compile`` = ``compiled``: its record."""
    import torch

    from geohelpers.config import resolve
    from geohelpers.stages.codes import load_codes
    from geohelpers.stages.priors import train_prior

    torch.set_num_threads(1)
    cfg = resolve("standard", {"prior.compile": compiled})
    codes = load_codes(cfg, name)
    t0 = time.perf_counter()
    trained = train_prior("pixelcnn", name, k, cfg, codes=codes)
    seconds = time.perf_counter() - t0
    h = trained.history
    test = trained.model.evaluate(torch.from_numpy(codes["test"]), cfg.data.eval_batch_size)
    return {"compile": compiled, "epochs": len(h.epochs), "stop": h.stop_reason, "best_epoch": h.best_epoch,
            "seconds": round(seconds, 1), "epoch_seconds": [round(e["seconds"], 1) for e in h.epochs],
            "val_nll": h.best_val_loss, "test_nll": test["nll_nats_per_token"], "bits_per_image": test["bits_per_image"],
            "trained_now": trained.built_now}


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", required=True, help="a scratch store ($GEOVQ_HOME) for the inputs and the priors")
    parser.add_argument("--k", type=int, default=512)
    parser.add_argument("--out", default=None)
    parser.add_argument("--one", choices=("eager", "compiled"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--codes", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.environ["GEOVQ_HOME"] = args.home
    os.environ.setdefault("TQDM_DISABLE", "1")
    if args.one:  # one side, in a process of its own
        print(json.dumps(train_one(args.codes, args.k, args.one == "compiled")), flush=True)
        return ""
    t0 = time.perf_counter()
    name = build_inputs(args.k)
    inputs_s = time.perf_counter() - t0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    procs = {side: subprocess.Popen([sys.executable, __file__, "--home", args.home, "--k", str(args.k), "--one", side,
                                     "--codes", name], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
             for side in ("eager", "compiled")}
    results = {side: json.loads(p.communicate()[0].strip().splitlines()[-1]) for side, p in procs.items()}
    a, b = results["eager"], results["compiled"]
    lines = [f"# prior_stage_compile: the standard PixelCNN prior on {name} (the standard GridVAE's K-means maps), "
             f"trained to its stopping rule twice at once, one torch thread each; inputs built or loaded in {inputs_s:.0f} s",
             *(f"{side:<9} prior.compile={r['compile']!s:<5} {r['epochs']:3d} epochs (best {r['best_epoch']}, stop: "
               f"{r['stop']}), {r['seconds']:7.1f} s, first epoch {r['epoch_seconds'][0]:.1f} s, later median "
               f"{sorted(r['epoch_seconds'][1:])[len(r['epoch_seconds'][1:]) // 2] if len(r['epoch_seconds']) > 1 else float('nan'):.1f} s; "
               f"validation NLL {r['val_nll']:.4f}, test NLL {r['test_nll']:.4f} nats per code ({r['bits_per_image']:.1f} "
               f"bits per image)" for side, r in results.items()),
             f"compiled / eager: seconds x{b['seconds'] / a['seconds']:.2f} (speed-up x{a['seconds'] / b['seconds']:.2f}), "
             f"test NLL {100 * (b['test_nll'] / a['test_nll'] - 1):+.2f} %"]
    report = "\n".join(lines)
    print(report)
    if args.out:
        Path(args.out).write_text(report + "\n")
    return report


if __name__ == "__main__":
    main()
