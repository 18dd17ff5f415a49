"""Figures of the book (matplotlib + seaborn). Each function returns its ``Figure``."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch
from matplotlib.figure import Figure

from .train import History

sns.set_theme(context="notebook", style="whitegrid")


def method_palette(hues: Sequence[str]) -> dict[str, object]:
    """One colour per a posteriori method for the whole book, by its place in
    :data:`geohelpers.config.METHOD_LABELS` (by key or label): K-means on μ has the same colour in notebooks
    02, 03, 07 and 08. Hues that are not methods take the next colours, in order."""
    from .config import METHOD_LABELS

    known = list(METHOD_LABELS) + list(METHOD_LABELS.values())
    base = sns.color_palette("tab10", n_colors=10)
    slot = {name: i % len(METHOD_LABELS) for i, name in enumerate(known)}
    others = [h for h in dict.fromkeys(hues) if h not in slot]
    out = {h: base[slot[h]] for h in hues if h in slot}
    spare = [c for i, c in enumerate(base) if i >= len(METHOD_LABELS)] + list(sns.color_palette("husl", len(others)))
    out.update({h: spare[i] for i, h in enumerate(others)})
    return out


def image_grid(images: torch.Tensor | np.ndarray, nrow: int, gap: int = 2) -> np.ndarray:
    """Tile (N, 1, H, W) images in [0, 1] into one array, ``gap`` blank (0) pixels between them."""
    imgs = np.asarray(images.detach().cpu() if isinstance(images, torch.Tensor) else images)[:, 0]
    n, h, w = imgs.shape
    rows = -(-n // nrow)
    grid = np.zeros((rows * (h + gap) - gap, nrow * (w + gap) - gap), dtype=np.float32)
    for i, img in enumerate(imgs):
        r, c = divmod(i, nrow)
        grid[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = img
    return grid


def training_curves(histories: Mapping[str, History], keys: Sequence[str] = ("train_loss", "val_loss"),
                    ylabel: str = "loss (nats / image)") -> Figure:
    """Loss per epoch for several models, one panel per model."""
    fig, axes = plt.subplots(1, len(histories), figsize=(4.5 * len(histories), 3.2), squeeze=False)
    for ax, (name, hist) in zip(axes[0], histories.items()):
        epochs = hist.column("epoch")
        for key in keys:
            ax.plot(epochs, hist.column(key), marker="o", label=key.replace("_", " "))
        ax.set(title=name, xlabel="epoch", ylabel=ylabel)
        epoch_axis(ax)
        ax.legend()
    fig.tight_layout()
    return fig


def epoch_axis(ax: plt.Axes) -> None:
    """Epochs are whole numbers: integer ticks only (a one-epoch run showed 0.96, 0.98, 1.00, ...)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def image_rows(rows: Mapping[str, torch.Tensor], ncol: int, scale: float = 1.0) -> Figure:
    """Several labelled rows of images (e.g. originals above reconstructions), each label left of its row.

    Each digit is ``0.55 * scale`` inches wide; rows are packed with a small gap, so a tall figure of
    many generators stays readable.
    """
    cell = 0.55 * scale
    label_w = 2.6 if max(len(k.split("\n")[0]) for k in rows) > 12 else 1.4
    width, row_h = ncol * cell * 30 / 28, cell * 1.08
    fig, axes = plt.subplots(len(rows), 1, figsize=(width + label_w, len(rows) * row_h + 0.2), squeeze=False)
    fig.subplots_adjust(left=label_w / (width + label_w), right=0.995, bottom=0.1 / (len(rows) * row_h + 0.2),
                        top=1 - 0.1 / (len(rows) * row_h + 0.2), hspace=0.08)
    for ax, (label, imgs) in zip(axes[:, 0], rows.items()):
        ax.imshow(image_grid(imgs[:ncol], ncol), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=10)
        for side in ax.spines.values():
            side.set_visible(False)
    return fig


def kl_per_unit(kls: Mapping[str, np.ndarray], threshold: float) -> Figure:
    """Sorted KL per latent unit for each model, with the 'active' threshold."""
    fig, axes = plt.subplots(1, len(kls), figsize=(4.5 * len(kls), 3.2), squeeze=False)
    for ax, (name, kl) in zip(axes[0], kls.items()):
        values = np.sort(kl.ravel())[::-1]
        ax.semilogy(np.arange(1, values.size + 1), np.maximum(values, 1e-6), drawstyle="steps-mid")
        ax.axhline(threshold, color="C3", ls="--", label=f"active: KL > {threshold:g}")
        ax.set(title=name, xlabel="latent unit (sorted)", ylabel="mean KL (nats)")
        ax.legend()
    fig.tight_layout()
    return fig


def mu_sigma_histograms(stats: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str = "") -> Figure:
    """Histograms of posterior means and standard deviations (all values given, pooled)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    if title:
        fig.suptitle(title)
    for name, (mu, sigma) in stats.items():
        sns.histplot(mu.ravel(), bins=120, stat="density", element="step", fill=False, ax=axes[0], label=name)
        sns.histplot(sigma.ravel(), bins=120, stat="density", element="step", fill=False, ax=axes[1], label=name)
    axes[0].set(xlabel=r"$\mu$", title=r"posterior means $\mu$")
    axes[1].set(xlabel=r"$\sigma$", title=r"posterior std. devs $\sigma$")
    for ax in axes:
        ax.legend()
    fig.tight_layout()
    return fig


def rate_distortion(df, baselines: Mapping[str, float] | None = None, x: str = "K", y: str = "mse_per_pixel",
                    hue: str = "method", panel: str = "VAE") -> Figure:
    """Test MSE against codebook size (log scale), one panel per VAE, the continuous VAE as a dashed line;
    one legend for all panels, outside them (a method keeps its colour and marker in every panel)."""
    panels = list(dict.fromkeys(df[panel]))
    order = list(dict.fromkeys(df[hue]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.4), squeeze=False)
    legend: dict[str, object] = {}
    for ax, name in zip(axes[0], panels):
        sub = df[df[panel] == name]
        sns.lineplot(data=sub, x=x, y=y, hue=hue, style=hue, hue_order=order, style_order=order, markers=True,
                     dashes=False, palette=method_palette(order), ax=ax)
        if baselines and name in baselines:
            ax.axhline(baselines[name], color="0.4", ls="--", lw=1, label="continuous (decode $\\mu$)")
        ax.set_xscale("log", base=2)
        ks = sorted(set(sub[x]))
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.minorticks_off()
        ax.set(title=name, xlabel="codebook size K", ylabel="test MSE per pixel")
        legend.update(zip(*ax.get_legend_handles_labels()[::-1]))
        ax.get_legend().remove()
    fig.tight_layout()
    fig.legend(list(legend.values()), list(legend), fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


def ratio_lines(table, ylabel: str, xlabel: str = "β") -> Figure:
    """One line per row of ``table`` (rows: methods, columns: a swept value, log scale), with the ratio 1
    dashed: below it the method beats the reference."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for (name, row), marker in zip(table.iterrows(), "osD^v<>pXh*"):
        ax.plot(table.columns, row.values, marker=marker, label=name)
    ax.axhline(1.0, color="0.4", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_xticks(list(table.columns), [f"{v:g}" for v in table.columns])
    ax.minorticks_off()
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


def embedding_scatter(points: np.ndarray, labelings: Mapping[str, np.ndarray], s: float = 4) -> Figure:
    """A 2-D embedding coloured by several cluster labelings, one panel each."""
    fig, axes = plt.subplots(1, len(labelings), figsize=(4.6 * len(labelings), 4.3), squeeze=False)
    for ax, (title, labels) in zip(axes[0], labelings.items()):
        ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab20", s=s, linewidths=0)
        ax.set(title=title, xticks=[], yticks=[])
    fig.tight_layout()
    return fig


def usage_curves(histories: Mapping[str, History]) -> Figure:
    """Validation code usage and codebook perplexity after each epoch, one line per model."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for name, hist in histories.items():
        epochs = hist.column("epoch")
        axes[0].plot(epochs, hist.column("val_usage"), marker="o", label=name)
        axes[1].plot(epochs, hist.column("val_perplexity"), marker="o", label=name)
    axes[0].set(xlabel="epoch", ylabel="codes used / K (validation)", ylim=(0, 1.05))
    axes[1].set(xlabel="epoch", ylabel="codebook perplexity (validation)")
    for ax in axes:
        epoch_axis(ax)
    axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


def prior_nll_bars(df, x: str = "codebook", hue: str = "model", y: str = "nats per token",
                   panel: str = "VAE") -> Figure:
    """Held-out NLL per token of each prior beside the context-free baseline, one bar group per codebook, a
    panel per VAE as wide as its groups need; one legend for all panels, outside them (a model keeps its
    colour in every panel)."""
    panels = list(dict.fromkeys(df[panel]))
    widths = [max(3.0, 0.6 * df.loc[df[panel] == name, x].nunique()) for name in panels]
    fig, axes = plt.subplots(1, len(panels), figsize=(sum(widths) + 1.5, 3.6), squeeze=False,
                             gridspec_kw={"width_ratios": widths})
    order = list(dict.fromkeys(df[hue]))
    legend: dict[str, object] = {}
    for ax, name in zip(axes[0], panels):
        sns.barplot(data=df[df[panel] == name], x=x, y=y, hue=hue, hue_order=order, ax=ax)
        ax.set(title=name, xlabel="", ylabel="test NLL (nats per code)")
        ax.tick_params(axis="x", labelrotation=40)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
        legend.update(zip(*ax.get_legend_handles_labels()[::-1]))
        ax.get_legend().remove()
    fig.tight_layout()
    fig.legend(list(legend.values()), list(legend), fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


def class_histograms(hists: Mapping[str, Sequence[float]]) -> Figure:
    """Fraction of samples of each generator predicted as each digit, as a heat map."""
    names = list(hists)
    data = np.array([hists[n] for n in names])
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(names) + 1.2))
    sns.heatmap(data, annot=True, fmt=".2f", cmap="viridis", vmin=0, vmax=max(0.3, float(data.max())),
                xticklabels=list(range(data.shape[1])), yticklabels=names, cbar=False, ax=ax,
                annot_kws={"fontsize": 7})
    ax.set(xlabel="predicted digit", ylabel="")
    fig.tight_layout()
    return fig


def metric_spectra(metrics: np.ndarray, grid: tuple[int, int] | None = (7, 7)) -> Figure:
    """The mean pullback metric of each position: its eigenvalues (one line per position, log scale), and,
    for a grid, the share of each position's trace in its largest eigenvalue (1: the decoder reads one
    direction of that vector)."""
    eig = np.linalg.eigvalsh(metrics)[:, ::-1]
    panels = 2 if grid else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.0 * panels, 3.6), squeeze=False)
    ax = axes[0, 0]
    for row in eig:
        ax.semilogy(np.arange(1, eig.shape[1] + 1), np.maximum(row, 1e-12), color="C0", alpha=0.3, lw=1)
    ax.semilogy(np.arange(1, eig.shape[1] + 1), np.median(eig, axis=0), color="C3", lw=2, label="median")
    ax.set(xlabel="eigenvalue rank", ylabel="eigenvalue of the mean metric", title="spectrum per position")
    ax.legend()
    if grid:
        share = (eig[:, 0] / eig.sum(1)).reshape(grid)
        sns.heatmap(share, vmin=0, vmax=1, cmap="viridis", annot=True, fmt=".2f", annot_kws={"fontsize": 7},
                    cbar=False, square=True, ax=axes[0, 1], xticklabels=False, yticklabels=False)
        axes[0, 1].set(title="largest eigenvalue / trace, per grid position")
    fig.tight_layout()
    return fig


def bits_axis(ax: plt.Axes, ticks: Sequence[float] | None = None, labels: Sequence[str] | None = None) -> None:
    """A rate axis in bits: log base 2, ticks at powers of two and 1.5 times them (64, 96, 128, ...), labelled
    in plain numbers with no minor labels; or, with ``ticks``, exactly those ticks (and ``labels``)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter, NullLocator

    ax.set_xscale("log", base=2)
    if ticks is not None:
        ax.xaxis.set_major_locator(FixedLocator(list(ticks)))
        ax.set_xticklabels(list(labels) if labels is not None else [f"{t:.0f}" for t in ticks])
    else:
        ax.xaxis.set_major_locator(LogLocator(base=2, subs=(1.0, 1.5)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def rd_curves(points) -> Figure:
    """The rate-distortion curves of the verdict: test MSE per pixel against the coded rate (the test NLL of
    each code set's prior, bits per image; left) and against the fixed-length rate (positions x log2 K;
    right, a tick at every K), log-log, one line per curve, one marker per K; the legend beside the panels."""
    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.2), sharey=True)
    for ax, x, label in ((axes[0], "coded_bits", "coded rate under the prior (bits per image)"),
                         (axes[1], "fixed_bits", "fixed-length rate (bits per image), K below")):
        for curve, g in points.groupby("curve", sort=False):
            g = g.sort_values(x)
            ax.plot(g[x], g["test_mse"], marker="o", linestyle="--" if "adapted" in curve else "-", label=curve)
            if ax is axes[0]:
                for r in g.itertuples():
                    ax.annotate(f"{r.K}", (getattr(r, x), r.test_mse), fontsize=6, xytext=(2, 2), textcoords="offset points")
        ax.set_yscale("log")
        ax.set(xlabel=label, ylabel="test MSE per pixel")
        ax.grid(True, which="both", alpha=0.3)
    bits_axis(axes[0])
    fixed = points.drop_duplicates("K").sort_values("K")
    bits_axis(axes[1], fixed["fixed_bits"], [f"{b:.0f}\n{k}" for b, k in zip(fixed["fixed_bits"], fixed["K"])])
    axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


def perception_along_curves(chosen, floor_fd: float, floor_is: float, floor_tv: float | None = None) -> Figure:
    """Samples along the curves, each generator at its validation-chosen temperature, against the coded rate:
    test FD (log scale; solid) with the reconstructions' FD (dotted: the same codes and decoder on the test
    images, what a perfect prior would reach); IS; and, with ``floor_tv``, the class spread (total
    variation of the predicted digits from uniform, 0 when balanced); each with real training images' value
    as a black line."""
    panels = 3 if floor_tv is not None else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels + 1.5, 4.2))
    colors = dict(zip(dict.fromkeys(chosen["curve"]), sns.color_palette(n_colors=chosen["curve"].nunique())))
    for curve, g in chosen.groupby("curve", sort=False):
        g = g.sort_values("coded_bits")
        axes[0].plot(g["coded_bits"], g["test_fd"], marker="o", color=colors[curve], label=f"{curve}: samples")
        axes[0].plot(g["coded_bits"], g["reconstruction_fd"], marker=".", linestyle=":", color=colors[curve])
        axes[1].plot(g["coded_bits"], g["inception_score"], marker="o", color=colors[curve], label=curve)
        if floor_tv is not None:
            axes[2].plot(g["coded_bits"], g["class_tv_from_uniform"], marker="o", color=colors[curve], label=curve)
    floors = [floor_fd, floor_is] + ([floor_tv] if floor_tv is not None else [])
    for ax, floor in zip(axes, floors):
        ax.axhline(floor, color="black", linewidth=1, label="real training images")
    axes[0].set(yscale="log", xlabel="coded rate (bits per image)", ylabel="FD to the test images\n(dotted: reconstructions)")
    axes[1].set(xlabel="coded rate (bits per image)", ylabel="Inception Score")
    if floor_tv is not None:
        axes[2].set(xlabel="coded rate (bits per image)", ylabel="class spread (TV from uniform)", ylim=(0, None))
    for ax in axes:
        bits_axis(ax)
        ax.grid(True, which="both", alpha=0.3)
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


