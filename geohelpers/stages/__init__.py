"""Stages: each module makes one kind of artifact, loaded when an up-to-date one is stored and built otherwise.

==================  ============================================================================
module              what it makes (artifact names; identities in :mod:`geohelpers.artifacts`)
==================  ============================================================================
``build``           the one load-or-train (:func:`~geohelpers.stages.build.load_or_train`) and its
                    result type :class:`~geohelpers.stages.build.Trained`
``vaes``            ``vae/flat``, ``vae/grid``; their posterior latents
``codebooks``       ``codebook/<vae>_<method>_K<k>``: K-means, W2, geodesic, decoder-aware
``vqvaes``          ``vqvae/<variant>_K<k>``: end-to-end VQ-VAEs
``codes``           ``codes/<code set>``: code maps of the train, validation and test images
``priors``          ``prior/<kind>_<code set>``: PixelCNN and Transformer priors over code maps
``samples``         ``samples/<kind>/<code set>``: code maps drawn from a prior at each temperature
``scoring``         ``classifier``: the scorer of every sample
``adaptation``      ``adapted/<code set>``: a decoder fine-tuned on one codebook's codes, and its
                    control on the continuous mu (``adapted/grid_continuous``)
``choices``         ``choice/<name>``: the choices made on validation that artifacts depend on
==================  ============================================================================

A notebook calls these functions and gets what the stage graph (:mod:`geohelpers.graph`) built before it,
or builds what is missing itself, the same way: so each notebook also runs alone in JupyterLab.
"""

from . import adaptation, build, choices, codebooks, codes, priors, samples, scoring, vaes, vqvaes  # noqa: E402,F401
