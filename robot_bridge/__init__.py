"""The robot bridge: drive a robot with a served VLM, safely (torch-free; runs on the robot computer).

* :mod:`robot_bridge.cameras`: camera specs and the latest-frame capture thread;
* :mod:`robot_bridge.robots`: the robot registry (``sim`` twin, LeRobot arms) and the thread-safe facade;
* :mod:`robot_bridge.planner`: the 1–3 Hz decision loop (prompt → server → parse);
* :mod:`robot_bridge.targets` / :mod:`robot_bridge.skills`: actions → 3-D targets → timed waypoints;
* :mod:`robot_bridge.executor`: the fixed-rate (30 Hz) action player;
* :mod:`robot_bridge.safety` / :mod:`robot_bridge.estop`: limits, watchdog, e-stop latch and its sources;
* :mod:`robot_bridge.recording`: decisions as a LeRobotDataset v3;
* :mod:`robot_bridge.session` and :mod:`robot_bridge.cli`: ``dppo bridge``.
"""
