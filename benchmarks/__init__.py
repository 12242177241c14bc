"""Embodied benchmarks scored by the official rules, in one resumable harness (``dppo eval``).

* :mod:`dppo_embodied.metrics`: the one definition of success per answer type (shared with the RL rewards).
* :mod:`benchmarks.task`: typed task YAMLs (``benchmarks/tasks/<suite>/``) and their ``TaskManager``.
* :mod:`benchmarks.adapters`: one module per benchmark, reading the Hugging Face snapshot layout into docs.
* :mod:`benchmarks.scoring`: the official scorers, with lmms-eval / VLMEvalKit variants as named options.
* :mod:`benchmarks.runner`: resume, sharding, generation; :mod:`benchmarks.task_scoring`: scoring in dataset order,
  ``samples.jsonl`` and ``results.json``; :mod:`benchmarks.settings`: ``RunSettings``; :mod:`benchmarks.backends`:
  ``hf``, ``openai``, ``vllm``, ``fake``; :mod:`benchmarks.closed_loop`: simulated closed-loop suites;
  :mod:`benchmarks.report`: capability table, radar plot, run diffs; :mod:`benchmarks.cli`: ``dppo eval``.

See ``docs/benchmarks.md``.
"""
