"""The other self-supervised signals of the lecture, trained on the same stored images as
the robot tasks (issue 9): context prediction (Doersch et al. 2015), colorization (Zhang
et al. 2016) and the split-brain auto-encoder (Zhang et al. 2017).

Every variant trains the same :class:`~curious_robot.learning.networks.RootNet` shapes and
writes a trainer-format checkpoint (``config.model``, ``model`` = a ``CuriousNet`` state
dict) that ``curious-robot eval`` loads like any other; the pretext-only parts (heads,
rebalancing weights, the unfolded training roots) live under the checkpoint's ``pretext``
key. See :mod:`curious_robot.pretext.train`.
"""
