"""A posteriori quantization of VAE latents: W2 and Euclidean K-means, k-NN geodesic K-medoids, and
codebooks under the decoder's pullback metric."""

from .codebook import Codebook, GeodesicCodebook, KMeansCodebook, W2Codebook, build_codebook
from .graph import connect_components, knn_graph, shortest_paths
from .kmeans import kmeans
from .search import nearest, nearest_k
from .kmedoids import kmedoids
from .w2 import w2_features, w2_squared, w2_squared_general
from .pullback import PullbackMeanCodebook, PullbackPositionCodebook  # registers the decoder-aware codebooks

__all__ = ["Codebook", "GeodesicCodebook", "KMeansCodebook", "W2Codebook", "build_codebook",
           "connect_components", "knn_graph", "shortest_paths", "kmeans", "nearest", "nearest_k", "kmedoids",
           "w2_features", "w2_squared", "w2_squared_general", "PullbackMeanCodebook",
           "PullbackPositionCodebook"]
