"""``dppo serve``: put a checkpoint behind an OpenAI-compatible API (transformers backend or vLLM).

* :mod:`inference.serving.protocol`: OpenAI chat request validation and response bodies (JSON only, no pickle);
* :mod:`inference.serving.batching`: the micro-batching queue in front of :class:`inference.policy.VLMPolicy`;
* :mod:`inference.serving.server`: the FastAPI app (``/v1/chat/completions``, ``/v1/models``, ``/health``);
* :mod:`inference.serving.vllm_launcher`: ``vllm serve`` with settings suited to robot decisions;
* :mod:`inference.serving.cli`: the ``dppo serve`` command.
"""
