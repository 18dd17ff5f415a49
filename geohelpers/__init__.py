"""geovq helpers: what the book's notebooks compute, in layers; a module imports only from its own layer
or the layers below it (``tests/test_layout.py`` checks that the import graph has no cycle and that
nothing imports the runner). Artifact identities and notebook stamps hash the modules git tracks
(:func:`geohelpers.artifacts.package_modules`): ``git add`` a new module before running the book with it.

====  ==========================================================  =============================================
layer modules                                                     what
====  ==========================================================  =============================================
0     ``config``, ``files``, ``data``, ``store``                  parameters; atomic writes and verified reads;
                                                                  MNIST; where artifacts and results live
1     ``models/``, ``quantize/``, ``train``, ``metrics``          networks; quantizers; the one training loop;
                                                                  numbers
2     ``artifacts``                                               the identity of every stored artifact, and the
                                                                  one list of what each module shapes
3     ``pipeline``                                                load-or-build of every model, codebook, code
                                                                  map and prior; evaluation
4     ``selection``, ``studies``                                  the book's decisions: choices on validation,
                                                                  comparisons at equal rate, the verdict
5     ``prose``, ``tables``, ``plots``, ``sweep_stats``           sentences, tables, figures; notebook 08's
                                                                  analysis of the sweeps
6     ``notebooks``, ``sweep``, ``run``, ``bookcheck``            executing notebooks (papermill, stamps),
                                                                  sweeps on Dask, the runner, the book check
====  ==========================================================  =============================================
"""
