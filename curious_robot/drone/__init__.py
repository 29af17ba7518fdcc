"""The drone of "Learning to Fly by Crashing" (Gandhi, Pinto, Gupta, IROS 2017) in the
Curious Robot's world: a simulated quadrotor in generated rooms (:mod:`.sim`), its
controllers (:mod:`.control`), the crash-collecting pilot (:mod:`.pilot`), flight policies
(:mod:`.policy`) and in-process evaluation / data runs (:mod:`.evaluate`). All pure
Python (PyBullet, numpy, torch); the ROS nodes are ``curious_robot.nodes.drone`` and
``curious_robot.nodes.pilot``.
"""
