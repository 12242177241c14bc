"""Run machinery: committed steps and checkpoints (:mod:`~training.runs.committed_run`), crash-safe state
(:mod:`~training.runs.state`), rank helpers (:mod:`~training.runs.distributed`), summaries, tables and plots
(:mod:`~training.runs.report`)."""
