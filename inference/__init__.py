"""Local model loading, generation and serving (torch): below ``benchmarks``, above the torch-free packages.

* :mod:`inference.models`: ``load_vlm`` (one code path for the tiny offline model and real Qwen2.5-VL);
* :mod:`inference.policy`: :class:`~inference.policy.VLMPolicy`, batched generation shared by evaluation,
  serving and training rollouts;
* :mod:`inference.tiny_vlm`: the offline tiny Qwen2.5-VL builder; :mod:`inference.model_shapes`: model shapes;
* :mod:`inference.serving`: ``dppo serve``, an OpenAI-compatible server.
"""
