"""The TRL phases of the metaloop, each config beside its phase.

* :mod:`~training.phases.grpo_config` + :mod:`~training.phases.grpo`: the RL phase (``GRPOTrainer``);
* :mod:`~training.phases.sft_config` + :mod:`~training.phases.sft`: the SFT phase (``SFTTrainer``; pre-training
  is an SFT phase);
* :mod:`~training.phases.common`: ``PhaseResult``, ``ComputeClock`` and the ``TrainingArguments`` helpers;
* :mod:`~training.phases.callbacks`: the stagnation stop rule, the NaN guard and the compute budget as TRL callbacks.
"""
