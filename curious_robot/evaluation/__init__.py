"""Evaluation of the learned root network (issue 6): frozen features on image folders
(1-NN and linear-probe accuracy), instance retrieval on held-out renders, the auto-encoder
baseline, and ``curious-robot reproduce`` that runs the whole comparison.

    features   load_root (checkpoint or random init), extract (per-layer features)
    folders    image-folder datasets and their train / test split
    metrics    nn_accuracy, linear_probe, recall_at_k (pure arrays)
    evaluate   the above on folders; nearest-neighbour pictures
    evalset    render held-out objects into folders
    categories everyday object categories (parametric meshes), split by instance into
               val / test, rendered; leave-one-instance-out 1-NN (eval-categories)
    baselines  the auto-encoder baseline
    reproduce  collect -> train variants -> evaluate -> results/
    cli        eval, evalset, eval-categories, autoencoder, reproduce subcommands

Importing the package is light; torch loads with the modules that need it.
"""

#: The layer ``eval`` reads when ``--layer`` is not given: best of the layers on held-out
#: renders in a small run (every layer is reported by ``--layer all`` and ``reproduce``).
#: Here, not in :mod:`.cli`, so that ``reproduce`` (which ``cli`` imports) need not import
#: ``cli`` back.
DEFAULT_LAYER = "pool5"
