"""Metrics on frozen features: 1-nearest-neighbour accuracy (cosine), a linear probe and
instance-retrieval recall@k. Pure numpy / torch on arrays; no files, no networks."""

from __future__ import annotations

import numpy as np
import torch

from curious_robot.evaluation.folders import stratified_split

#: Weight decays the linear probe chooses from (on a validation split of the training set).
PROBE_WEIGHT_DECAYS = (1e-4, 1e-3, 1e-2, 1e-1)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cosine_neighbours(query: np.ndarray, gallery: np.ndarray, k: int,
                      exclude_self: bool = False) -> np.ndarray:
    """(Nq, k) gallery indices, most cosine-similar first. ``exclude_self``: query i is
    gallery i and never its own neighbour. Ties go to the lower index."""
    q, g = l2_normalize(query), l2_normalize(gallery)
    sim = q @ g.T
    if exclude_self:
        np.fill_diagonal(sim, -np.inf)
    k = min(k, sim.shape[1] - (1 if exclude_self else 0))
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]


def nn_accuracy(train_x, train_y, test_x, test_y) -> float:
    """Share of test items whose most cosine-similar training item has their label."""
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    if not len(test_y) or not len(train_y):
        raise ValueError("nearest-neighbour accuracy needs training and test items")
    nearest = cosine_neighbours(test_x, train_x, 1)[:, 0]
    return float(np.mean(train_y[nearest] == test_y))


def _standardize(train_x: np.ndarray, *others: np.ndarray):
    mean = train_x.mean(0, keepdims=True)
    std = train_x.std(0, keepdims=True) + 1e-6
    return [(x - mean) / std for x in (train_x, *others)]


def _fit_softmax(x: torch.Tensor, y: torch.Tensor, n_classes: int, weight_decay: float,
                 iters: int) -> torch.nn.Linear:
    """Multinomial logistic regression, full batch L-BFGS; deterministic."""
    torch.manual_seed(0)
    model = torch.nn.Linear(x.shape[1], n_classes)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=iters,
                            history_size=10, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y) + \
            0.5 * weight_decay * model.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return model


def linear_probe(train_x, train_y, test_x, test_y, weight_decays=PROBE_WEIGHT_DECAYS,
                 iters: int = 100, seed: int = 0) -> tuple[float, float]:
    """Test accuracy of a softmax classifier on standardised features, and the weight decay
    it used: picked by accuracy on a stratified 25 % validation part of the training set
    (the test set is never looked at), then refitted on the whole training set."""
    train_x, test_x = np.asarray(train_x, np.float32), np.asarray(test_x, np.float32)
    train_y, test_y = np.asarray(train_y, np.int64), np.asarray(test_y, np.int64)
    if not len(test_y) or not len(train_y):
        raise ValueError("the linear probe needs training and test items")
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    with torch.random.fork_rng(devices=[]):
        decays = tuple(weight_decays)
        if len(decays) > 1:
            fit_i, val_i = stratified_split(train_y, 0.25, seed)
            if len(val_i) and len(np.unique(train_y[fit_i])) > 1:
                fx, vx = _standardize(train_x[fit_i], train_x[val_i])
                fx, vx = torch.from_numpy(fx), torch.from_numpy(vx)
                fy = torch.from_numpy(train_y[fit_i])
                scores = []
                for wd in decays:
                    model = _fit_softmax(fx, fy, n_classes, wd, iters)
                    pred = model(vx).argmax(1).numpy()
                    scores.append(float(np.mean(pred == train_y[val_i])))
                decays = (decays[int(np.argmax(scores))],)  # ties: the smallest decay
        tx, ex = _standardize(train_x, test_x)
        model = _fit_softmax(torch.from_numpy(tx), torch.from_numpy(train_y), n_classes,
                             decays[0], iters)
        with torch.no_grad():
            pred = model(torch.from_numpy(ex)).argmax(1).numpy()
    return float(np.mean(pred == test_y)), float(decays[0])


def recall_hits(x, labels, ks=(1, 5)) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Instance retrieval, per query: each item queries all the others (cosine); a hit at
    k is an item of its own label among its k nearest. Items whose label has no other
    item are not queries (nothing to find). Returns the query indices and, per k, one
    bool per query (one ranking serves every k)."""
    labels = np.asarray(labels)
    if len(labels) < 2:
        raise ValueError("retrieval needs at least two items")
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    queries = np.flatnonzero(counts[inverse] >= 2)
    if not len(queries):
        raise ValueError("retrieval needs a label with at least two items")
    kmax = max(ks)
    x = l2_normalize(x)
    hits = {k: np.zeros(len(queries), bool) for k in ks}
    for start in range(0, len(queries), 512):  # bounded memory for big galleries
        q = queries[start:start + 512]
        sim = x[q] @ x.T
        sim[np.arange(len(q)), q] = -np.inf
        top = np.argsort(-sim, axis=1, kind="stable")[:, :kmax]
        same = labels[top] == labels[q][:, None]
        for k in ks:
            hits[k][start:start + len(q)] = same[:, :k].any(axis=1)
    return queries, hits


def recall_at_k(x, labels, ks=(1, 5)) -> dict[int, float]:
    """recall@k: the share of queries with a hit at k (:func:`recall_hits`)."""
    _, hits = recall_hits(x, labels, ks)
    return {k: float(h.mean()) for k, h in hits.items()}


def group_means(values, groups) -> tuple[np.ndarray, np.ndarray]:
    """(sorted group ids, the mean of ``values`` over each group's items)."""
    values, groups = np.asarray(values, np.float64), np.asarray(groups)
    ids, inverse = np.unique(groups, return_inverse=True)
    return ids, np.bincount(inverse, values) / np.bincount(inverse)


def group_standard_error(correct, groups) -> float:
    """Standard error of a mean of per-item 0/1 ``correct`` whose items come in correlated
    ``groups`` (the views of one object): the spread of per-group means over sqrt(number
    of groups). Eight views of one object are not eight independent tests."""
    _, means = group_means(correct, groups)
    if len(means) < 2:
        return float("nan")
    return float(means.std(ddof=1) / np.sqrt(len(means)))


def paired_difference(a, b) -> tuple[float, float]:
    """Mean of ``a - b`` over paired units (per-object scores of two networks on the same
    objects) and its standard error. Pairing removes what the objects share (an object
    that is hard for one network tends to be hard for the other), so a difference is
    judged against its own spread, not against the two scores' separate errors."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired scores need two equal-length vectors, got {a.shape} and "
                         f"{b.shape}")
    d = a - b
    if len(d) < 2:
        return float(d.mean()) if len(d) else float("nan"), float("nan")
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


def nn_hits_across_groups(x, labels, groups) -> np.ndarray:
    """Per item: does its most cosine-similar item *of another group* (another object)
    have its label? Every item is a test item, and none is matched to a view of itself:
    a 1-NN accuracy over all objects instead of one object-disjoint split."""
    labels, groups = np.asarray(labels), np.asarray(groups)
    if len(np.unique(groups)) < 2:
        raise ValueError("nearest neighbours across groups need at least two groups")
    x = l2_normalize(x)
    hits = np.zeros(len(labels), bool)
    for start in range(0, len(labels), 512):
        sl = slice(start, start + 512)
        sim = x[sl] @ x.T
        sim[groups[sl][:, None] == groups[None, :]] = -np.inf
        hits[sl] = labels[np.argmax(sim, axis=1)] == labels[sl]
    return hits
