"""``dppo serve``: put a checkpoint behind an OpenAI-compatible API (transformers backend or vLLM).

* :mod:`training.serving.protocol`: OpenAI chat request validation and response bodies (JSON only, no pickle);
* :mod:`training.serving.batching`: the micro-batching queue in front of :class:`training.policy.VLMPolicy`;
* :mod:`training.serving.server`: the FastAPI app (``/v1/chat/completions``, ``/v1/models``, ``/health``);
* :mod:`training.serving.vllm_launcher`: ``vllm serve`` with settings suited to robot decisions;
* :mod:`training.serving.cli`: the ``dppo serve`` command.
"""
