"""The DPPO algorithm pieces that do not drive TRL (no trainer here; torch only where a policy generates).

* :mod:`~training.algorithm.data_sources`: candidates, held-out, general replay and fresh synthesis;
* :mod:`~training.algorithm.sample_io`: a sample's prompt, SFT target and media;
* :mod:`~training.algorithm.rewards`: format and task rewards (``dppo_embodied.metrics``), the reward recorder;
* :mod:`~training.algorithm.difficulty`: success rates over T rollouts and the RL buffer;
* :mod:`~training.algorithm.stagnation`: the saturation tracker of the RL stop rule;
* :mod:`~training.algorithm.diagnosis`: failures and weak capabilities;
* :mod:`~training.algorithm.teacher`: verified targets for the failures;
* :mod:`~training.algorithm.env_rollouts`: closed-loop episodes as rollouts, episode rewards, oracle demonstrations;
* :mod:`~training.algorithm.evaluation`: held-out success per capability.

Each ``<step>_config.py`` holds the settings of its step (composed in :mod:`training.metaloop_config`).
"""
