"""Inference for action selection: a trained network behind numpy-in, numpy-out methods.

``Predictor.from_checkpoint(path, device)`` loads the newest checkpoint of a training
folder (or any checkpoint file); ``maybe_reload()`` swaps in a newer file when the trainer
has written one (file changed and a different step). Methods are thread-safe (one lock), so
a selector node may call them from several service callbacks. ``Predictor.shared(path)``
is the process's one predictor of a file: nodes that share a process (the container runs
the three selectors and the manager together) load each new checkpoint once between them,
not once each.

Uncertainty for "curious" selection, cheap by design:
- grasp: per-bin binary entropy of the predicted success (1 bit at p = 0.5, 0 at 0 or 1);
- poke: MC dropout: the head (not the root) sampled ``samples`` times on one fc6 feature,
  standard deviation in physical units;
- push: MC dropout of the push head's forward model, the root run once on the scene, the
  head's hidden part once per candidate push, its last layer ``samples`` times.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from curious_robot.learning import data
from curious_robot.learning.checkpoint import CheckpointError, load_checkpoint
from curious_robot.learning.networks import CuriousNet, ModelConfig

log = logging.getLogger(__name__)


def _file_key(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _checkpoint_file(path) -> Path:
    """``path``, or checkpoint.pt inside it when it is a training folder."""
    path = Path(path)
    return path / "checkpoint.pt" if path.is_dir() else path


#: (file, device) -> the predictor ``Predictor.shared`` hands out; kept only while in use
_SHARED: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


def inference_threads(n: int) -> None:
    """Let torch use ``n`` CPU threads in this process (0: leave torch's choice). A robot's
    nodes score with the model between physics steps on the same cores as the learner:
    torch's default, a thread per core, only adds threads that wait for each other."""
    if n < 0:
        raise ValueError(f"threads must be >= 0, got {n}")
    if n and torch.get_num_threads() != n:
        torch.set_num_threads(n)


def inference_model(model: CuriousNet, device) -> CuriousNet:
    """``model`` (in place) on ``device`` in eval mode, its convolution weights in
    channels-last layout (:meth:`Predictor._images` gives the images the same layout). The
    default layout spends about a third of a small batch's time converting tensors to and
    from oneDNN's: on one CPU thread the grasp forward of one 96 px patch takes 2.4 ms
    instead of 3.8 (``curious-robot bench learner``), five patches 7.0 instead of 8.2 ms.
    The outputs are the same up to float rounding (tests/test_policy.py)."""
    return model.to(torch.device(device)).eval().to(memory_format=torch.channels_last)


def binary_entropy(p) -> np.ndarray:
    """Entropy in bits of Bernoulli(p), elementwise."""
    p = np.clip(np.asarray(p, np.float64), 1e-12, 1 - 1e-12)
    return -(p * np.log2(p) + (1 - p) * np.log2(1 - p))


class Predictor:
    def __init__(self, model: CuriousNet, stats: dict[str, data.NormStats], step: int = 0,
                 device="cpu", path: str | os.PathLike | None = None):
        self.device = torch.device(device)
        self.model = inference_model(model, self.device)
        self.stats = stats
        self.step = int(step)
        self.path = Path(path) if path is not None else None
        self._key = _file_key(self.path) if self.path is not None else None
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()  # one reload at a time: the others wait for it

    @property
    def input_size(self) -> int:
        return self.model.cfg.input_size

    @staticmethod
    def _load(path, device):
        state = load_checkpoint(path, map_location=torch.device(device))
        model = CuriousNet(ModelConfig.from_dict(state["config"]["model"]))
        model.load_state_dict(state["model"])
        stats = {k: data.NormStats.from_dict(v) for k, v in state.get("stats", {}).items()}
        return model, stats, int(state["step"])

    @classmethod
    def from_checkpoint(cls, path, device="cpu") -> Predictor:
        """Load ``path`` (a checkpoint file, or a training folder holding checkpoint.pt)."""
        path = _checkpoint_file(path)
        model, stats, step = cls._load(path, device)
        return cls(model, stats, step, device, path)

    @classmethod
    def shared(cls, path, device="cpu") -> Predictor:
        """The process's one predictor of ``path`` on ``device``: loaded on first use,
        brought up to date (:meth:`maybe_reload`) on every later one, and kept only while
        something holds it. Its methods are thread-safe, so nodes of one process can share
        it; each new checkpoint is then read from disk once."""
        path = _checkpoint_file(path)
        key = (str(path.resolve()), str(torch.device(device)))
        with _SHARED_LOCK:
            predictor = _SHARED.get(key)
            if predictor is None:
                predictor = cls.from_checkpoint(path, device)
                _SHARED[key] = predictor
                return predictor
        predictor.maybe_reload()
        return predictor

    def maybe_reload(self) -> bool:
        """Load the checkpoint file again if it changed on disk and holds another step;
        True when the model was replaced. A damaged file is logged and the old model kept.
        Callers that find the file changed while another reloads it wait for that reload
        and do not repeat it."""
        if self.path is None:
            return False
        key = _file_key(self.path)
        if key is None or key == self._key:
            return False
        with self._reload_lock:
            key = _file_key(self.path)
            if key is None or key == self._key:
                return False  # reloaded while this caller waited
            try:
                model, stats, step = self._load(self.path, self.device)
            except CheckpointError as exc:
                log.warning("keeping the model of step %d: %s", self.step, exc)
                return False
            with self._lock:
                self._key = key
                if step == self.step:
                    return False
                self.model = inference_model(model, self.device)
                self.stats, self.step = stats, step
        log.info("reloaded %s: step %d", self.path, step)
        return True

    # -- helpers --------------------------------------------------------------------------

    @property
    def poke_view(self) -> str:
        """How this model's poke head takes a patch (``patch_view``: "contrast", "crop" or
        "resize")."""
        return self.model.cfg.view("poke")

    def _images(self, images, view: str = "resize") -> torch.Tensor:
        """One (H, W, 3) uint8 image or a list / (N, H, W, 3) stack -> normalised tensor
        (``view``: :data:`curious_robot.learning.config.PATCH_VIEWS`)."""
        if isinstance(images, np.ndarray) and images.ndim == 3:
            images = [images]
        for img in images:
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                raise ValueError(f"expected uint8 (H, W, 3) RGB images, got {img.dtype} "
                                 f"{img.shape}")
        return data.to_tensors({"x": data.stack(list(images), self.input_size, view)},
                               self.device)["x"].contiguous(memory_format=torch.channels_last)

    def _stats(self, key: str) -> data.NormStats:
        if key not in self.stats:
            raise ValueError(f"this checkpoint has no {key} normalisation (no {key} training "
                             "data yet)")
        return self.stats[key]

    # -- grasp ----------------------------------------------------------------------------

    @torch.no_grad()
    def grasp_scores_batch(self, patches) -> np.ndarray:
        """(N, 18) success probabilities, bin b = grasp angle b * 10 degrees."""
        with self._lock:
            return torch.sigmoid(self.model.grasp(self._images(patches))).cpu().numpy()

    def grasp_scores(self, patch: np.ndarray) -> np.ndarray:
        """18 success probabilities for a grasp patch centred on the grasp point."""
        return self.grasp_scores_batch(patch)[0]

    def grasp_uncertainty(self, patch: np.ndarray) -> np.ndarray:
        """18 binary entropies (bits) of the predicted success; highest near p = 0.5."""
        return binary_entropy(self.grasp_scores(patch))

    def best_grasp(self, patch: np.ndarray) -> tuple[float, float]:
        """(angle in rad of the best bin's centre, its success probability)."""
        scores = self.grasp_scores(patch)
        b = int(np.argmax(scores))
        return data.bin_to_angle(b), float(scores[b])

    # -- poke -----------------------------------------------------------------------------

    @torch.no_grad()
    def poke_predict(self, patch: np.ndarray) -> float:
        """The felt stiffness (slope, N/m) predicted for poking the object in ``patch``."""
        stats = self._stats("poke")
        with self._lock:
            z = self.model.poke(self._images(patch, self.poke_view)).cpu().numpy()[0]
        from curious_robot.tactile import MAX_SLOPE

        # an untrained head can say anything: keep to what a probe can feel (1 .. 1e6 N/m)
        return float(np.exp(np.clip(stats.denormalize(z)[0], 0.0, np.log(MAX_SLOPE))))

    @torch.no_grad()
    def poke_uncertainty(self, patch: np.ndarray, samples: int = 16) -> float:
        """MC-dropout standard deviation of the predicted log stiffness (a relative spread:
        0.1 is about 10 %)."""
        stats = self._stats("poke")
        with self._lock:
            f = self.model.poke_features(self._images(patch, self.poke_view))
            z = self.model.heads["poke"].sample(f, samples)[:, 0].cpu().numpy()
        return float(z.std(axis=0)[0] * np.asarray(stats.std)[0])

    @torch.no_grad()
    def poke_uncertainty_batch(self, patches, samples: int = 16,
                               seed: int | None = None) -> np.ndarray:
        """(N, 1) MC-dropout standard deviations in *normalised* units (the log slope
        divided by its training std), one row per patch; the root runs once on the
        batch, the head ``samples`` times. ``seed`` makes the dropout masks reproducible
        (a private generator; the global torch RNG is untouched)."""
        self._stats("poke")
        with self._lock:
            f = self.model.poke_features(self._images(patches, self.poke_view))
            head = self.model.heads["poke"]
            h = head.hidden(f).unsqueeze(0).expand(samples, -1, -1)
            p = float(head.dropout.p)
            if p > 0:
                g = torch.Generator(device=h.device)
                g.manual_seed(int(seed) if seed is not None
                              else int(torch.randint(2**62, (1,)).item()))
                keep = torch.rand(h.shape, generator=g, device=h.device) >= p
                h = h * keep / (1.0 - p)
            z = head.out(h).cpu().numpy()
        return z.std(axis=0)

    # -- push -----------------------------------------------------------------------------

    @torch.no_grad()
    def push_predict(self, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        """The push (start_x, start_y, end_x, end_y; m) that most likely turned ``before``
        into ``after`` (the inverse model)."""
        stats = self._stats("push")
        with self._lock:
            z = self.model.push(self._images(before), self._images(after)).cpu().numpy()[0]
        return stats.denormalize(z)

    def push_score(self, before: np.ndarray, after: np.ndarray, action) -> float:
        """How well ``action`` matches the inverse model's push for (before -> after): minus
        the normalised L2 distance (0 is a perfect match)."""
        stats = self._stats("push")
        pred = stats.normalize(self.push_predict(before, after))
        return -float(np.linalg.norm(pred - stats.normalize(np.asarray(action)[:4])))

    @torch.no_grad()
    def push_outcome_samples(self, scene: np.ndarray, points: np.ndarray, samples: int = 16,
                             seed: int | None = None) -> np.ndarray:
        """(samples, K, 2) MC-dropout draws of the forward model's *normalised* displacement
        (dx, dy) for K pushes on one scene image; ``points``: (K, P, 2) the pushes in
        the image's normalised coordinates (``Push.points``). ``seed`` makes the dropout
        masks reproducible (a private generator; the global torch RNG is untouched)."""
        from curious_robot.tasks.push import FORWARD_KEY

        self._stats(FORWARD_KEY)
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        with self._lock:
            pts = torch.as_tensor(np.asarray(points, np.float32), device=self.device)
            f = self.model.root(self._images(scene), upto=self.model.head_inputs["push"])
            f = f.expand(len(pts), *f.shape[1:])
            g = torch.Generator(device=self.device)
            g.manual_seed(int(seed) if seed is not None
                          else int(torch.randint(2**62, (1,)).item()))
            return self.model.heads["push"].forward_model.sample(f, pts, samples, g
                                                                 ).cpu().numpy()

    @torch.no_grad()
    def push_outcome(self, scene: np.ndarray, points: np.ndarray) -> np.ndarray:
        """(K, 2) the forward model's displacement (dx, dy in m) of K pushes
        on one scene image (dropout off)."""
        from curious_robot.tasks.push import FORWARD_KEY

        stats = self._stats(FORWARD_KEY)
        with self._lock:
            pts = torch.as_tensor(np.asarray(points, np.float32), device=self.device)
            f = self.model.root(self._images(scene), upto=self.model.head_inputs["push"])
            z = self.model.heads["push"].forward_model(f.expand(len(pts), *f.shape[1:]), pts)
        return stats.denormalize(z.cpu().numpy())

    # -- identity / features --------------------------------------------------------------

    @torch.no_grad()
    def embed(self, images) -> np.ndarray:
        """(N, D) unit-length identity embeddings."""
        with self._lock:
            return F.normalize(self.model.embed(self._images(images)), dim=1).cpu().numpy()

    @torch.no_grad()
    def features(self, images, layer: str = "conv5") -> np.ndarray:
        """(N, ...) root features at ``layer`` (conv1..conv5, pool5, fc6)."""
        with self._lock:
            return self.model.root(self._images(images), upto=layer).contiguous().cpu().numpy()
