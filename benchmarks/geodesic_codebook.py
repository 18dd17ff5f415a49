"""Study 003's geodesic codebook recipe against ours, on the GridVAE's real training latents, in one run.

Both pipelines start from the same landmarks (10,000 distinct training vectors of the standard
profile's GridVAE) and the same k-NN graph size (k = 15, study 003's), so that their K-medoids losses
are measured on the same geodesic distances. Then every training vector gets a code.

- study 003: sklearn ``kneighbors_graph`` (distance mode); scipy ``shortest_path`` on one core, ``inf``
  replaced by 1.1 x max; sklearn-extra ``KMedoids(metric="precomputed", method="alternate")`` with its
  default ``heuristic`` init; a 1-NN classifier (nearest landmark) for every vector.
- ours (``GeodesicCodebook``): our k-NN graph and repair; Dijkstra split over both cores into shared
  memory; FasterPAM on both cores; the geodesic assignment over the 8 nearest landmarks (KD-tree on both
  cores), which does more work than a 1-NN rule.

Printed: each stage's wall time, the totals, their ratio, and both K-medoids losses (the sum of
geodesic distances of the landmarks to their medoids). Stages that use one core say so. Then ours once
more at its own default graph size (``--knn-ours``, k = 10): its time, and its loss on its own (sparser)
graph, which is not comparable with the like-for-like losses above.

    python benchmarks/geodesic_codebook.py [--k 512] [--landmarks 10000] [--repeats 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from scipy.sparse.csgraph import shortest_path
from sklearn.neighbors import KNeighborsClassifier, kneighbors_graph

from geohelpers import config, data, stages
from geohelpers.quantize import GeodesicCodebook
from geohelpers.quantize.codebook import sample_distinct


def study_003(landmarks: np.ndarray, vectors: np.ndarray, k: int, knn: int) -> tuple[dict, np.ndarray]:
    times: dict[str, float] = {}
    t = time.perf_counter()
    graph = kneighbors_graph(landmarks, knn, mode="distance")
    times["k-NN graph (sklearn kneighbors_graph)"] = time.perf_counter() - t
    t = time.perf_counter()
    geo = shortest_path(graph, directed=False)
    finite = np.isfinite(geo)
    geo[~finite] = 1.1 * geo[finite].max()
    times["shortest paths (scipy, 1 core)"] = time.perf_counter() - t
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sklearn_extra.cluster import KMedoids

        km = KMedoids(n_clusters=k, metric="precomputed", method="alternate", random_state=0).fit(geo)
    times["K-medoids (sklearn-extra alternate, 1 core)"] = time.perf_counter() - t
    t = time.perf_counter()
    clf = KNeighborsClassifier(n_neighbors=1).fit(landmarks, km.labels_)
    clf.predict(vectors)
    times["assign every vector (1-NN classifier)"] = time.perf_counter() - t
    return times, np.asarray(km.medoid_indices_)


def ours(landmarks: np.ndarray, vectors: np.ndarray, k: int, knn: int) -> tuple[dict, np.ndarray, np.ndarray]:
    cb = GeodesicCodebook(k, n_landmarks=len(landmarks), knn=knn, n_jobs=0)
    t = time.perf_counter()
    idx, geo = cb.build_geodesics(landmarks)  # the landmarks are already distinct: all are kept
    build = time.perf_counter() - t
    cb.fit_geodesics(landmarks, None, idx, geo)
    t = time.perf_counter()
    cb.encode(vectors)
    assign = time.perf_counter() - t
    s = cb.fit_seconds
    times = {"k-NN graph and repair": s["knn_graph"] + s["repair"] + s["landmarks"],
             "shortest paths (Dijkstra, 2 processes)": s["shortest_paths"],
             "K-medoids (FasterPAM, 2 cores)": s["kmedoids"],
             "assign every vector (geodesic, 8 landmarks)": assign,
             "(other: diagnostics)": build - s["knn_graph"] - s["repair"] - s["landmarks"] - s["shortest_paths"]}
    medoids = np.array([int(np.flatnonzero(idx == m)[0]) for m in cb.medoid_index])
    return times, medoids, geo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=512)
    parser.add_argument("--landmarks", type=int, default=10_000)
    parser.add_argument("--knn", type=int, default=15)
    parser.add_argument("--knn-ours", type=int, default=config.resolve("standard").quantize.knn)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    cfg = config.resolve("standard")
    mnist = data.load_mnist(cfg.data)
    vae = stages.vaes.train_vae("grid", cfg, mnist).model
    mu, _ = vae.encode_all(mnist.train_x)
    vectors = vae.to_vectors(mu).numpy()
    idx, _ = sample_distinct(vectors, args.landmarks, np.random.default_rng(0))
    landmarks = vectors[idx]
    print(f"{len(vectors):,} GridVAE training vectors ({vectors.shape[1]} dims), {len(landmarks):,} landmarks, "
          f"k = {args.knn}, K = {args.k}", flush=True)
    totals: dict[str, list[float]] = {"study 003": [], "ours": []}
    for r in range(args.repeats):
        t_ref, med_ref = study_003(landmarks, vectors, args.k, args.knn)
        t_ours, med_ours, geo = ours(landmarks, vectors, args.k, args.knn)
        for name, times in (("study 003", t_ref), ("ours", t_ours)):
            totals[name].append(sum(times.values()))
            print(f"\nrepeat {r + 1}, {name}:")
            for stage, sec in times.items():
                print(f"  {stage:<48} {sec:7.2f} s")
            print(f"  {'total':<48} {totals[name][-1]:7.2f} s", flush=True)
    loss_ref = float(geo[:, med_ref].min(axis=1).sum())
    loss_ours = float(geo[:, med_ours].min(axis=1).sum())
    ref, our = statistics.median(totals["study 003"]), statistics.median(totals["ours"])
    print(f"\nmedian total over {args.repeats} repeat(s): study 003 {ref:.1f} s, ours {our:.1f} s, "
          f"ratio {ref / our:.2f}x")
    print(f"K-medoids loss on the same geodesic distances: study 003 {loss_ref:.1f}, ours {loss_ours:.1f} "
          f"({100 * (loss_ours / loss_ref - 1):+.1f} %)")
    if args.knn_ours != args.knn:
        t_own, med_own, geo_own = ours(landmarks, vectors, args.k, args.knn_ours)
        total = sum(t_own.values())
        print(f"\nours at its default k = {args.knn_ours}: total {total:.1f} s "
              f"(shortest paths {t_own['shortest paths (Dijkstra, 2 processes)']:.1f} s), ratio to study 003 "
              f"{ref / total:.2f}x; K-medoids loss on its own k = {args.knn_ours} graph "
              f"{float(geo_own[:, med_own].min(axis=1).sum()):.1f} (a different distance: not comparable)")


if __name__ == "__main__":
    main()
