"""geovq helpers: what the book's notebooks compute, in layers; a module imports only from its own layer
or the layers below it (``tests/test_layout.py`` reads this table and the imports, and checks that every
module has a layer, that no import goes upward, that the import graph has no cycle and that nothing
imports the runner). Artifact identities and notebook stamps hash the modules git tracks
(:func:`geohelpers.artifacts.package_modules`): ``git add`` a new module before running the book with it.

====  ==========================================================  =============================================
layer modules                                                     what
====  ==========================================================  =============================================
0     ``config``, ``files``, ``data``, ``store``                  parameters; atomic writes and verified reads;
                                                                  MNIST; where artifacts and results live
1     ``models/``, ``quantize/``, ``train``, ``metrics``          networks; quantizers; the one training loop;
                                                                  numbers
2     ``artifacts``, ``plan``                                     the identity of every stored artifact, and the
                                                                  one list of what each module shapes; what a
                                                                  profile makes once its choices are known
3     ``stages/``                                                 one module per kind of artifact, each a
                                                                  load-or-build by identity (VAEs, codebooks,
                                                                  VQ-VAEs, code maps, priors, classifier,
                                                                  adapted decoders)
4     ``evaluation``, ``geodesic_experiments``, ``selection``,    what the notebooks measure on held-out data;
      ``studies``                                                 notebook 03's graph experiments; the book's
                                                                  decisions on validation; the earlier studies
5     ``graph``, ``prose``, ``conclusions``, ``tables``,          the stage graph on Dask; sentences (the
      ``plots``, ``sweep_stats``                                  verdict's apart), tables, figures; notebook
                                                                  08's analysis of the sweeps
6     ``notebooks``, ``sweep``, ``preflight``, ``run``,           executing notebooks (papermill, stamps),
      ``bookcheck``                                               sweeps on Dask, the environment checked
                                                                  before any work, the runner, the book check
====  ==========================================================  =============================================
"""
