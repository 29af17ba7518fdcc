"""The robot's motions, written once: geometry, the shared arm model (:mod:`.arm_model`)
and configuration. Pure: nothing of :mod:`curious_robot.world` or :mod:`curious_robot.arm`.
"""
