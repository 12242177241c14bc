"""The optional BLINK answer-matching judge, used only when configured (the official GPT-3.5-turbo prompt).

Configure with scorer options ``judge_base_url`` / ``judge_model`` (or ``DPPO_JUDGE_BASE_URL`` /
``DPPO_JUDGE_MODEL``; the key comes from ``DPPO_JUDGE_API_KEY``, else ``DPPO_API_KEY`` / ``OPENAI_API_KEY``).
Any OpenAI-compatible server works (a local vLLM model as judge is cheaper than the hosted one, but changes
numbers: report which judge was used). A failed request answers ``(Z)``, as the official code does after retries.
"""

from __future__ import annotations

import logging
import os

from dppo_embodied.client import ChatClient, ClientConfig
from dppo_embodied.errors import ClientError, ConfigError

logger = logging.getLogger(__name__)

TEMPLATE = (
    "You are an AI assistant who will help me to match an answer with several options of a single-choice question. "
    "You are provided with a question, several options, and an answer, and you need to find which option is most "
    "similar to the answer. If the answer says things like refuse to answer, I'm sorry cannot help, etc., output (Z)"
    "If the meaning of all options are significantly different from the answer, or the answer does not select any "
    "option, output (Z)Your should output one of the choices, (A),(B),(C),(D),(E) (if they are valid options), or "
    "(Z)\nExample 1: \nQuestion: Which point is closer to the camera?\nSelect from the following choices.\nOptions: "
    "(A) Point A\n(B) Point B\n(Z) Failed\nAnswer: Point B, where the child is sitting, is closer to the camera.\n"
    "Your output: (B)\nExample 2: \nQuestion: Which point is closer to the camera?\nSelect from the following "
    "choices.\nOptions: (A) Point A\n(B) Point B\n(Z) Failed\nAnswer: I'm sorry, but I can't assist with that "
    "request.\nYour output: (Z)\nExample 3: \nQuestion: Which point is corresponding to the reference point?\nSelect "
    "from the following choices.\nOptions: (A) Point A\n(B) Point B\n(Z) Failed\nAnswer:The reference point (REF) on "
    "the first image is at the tip of the pot, which is the part used to Poke if the pots were used for that action. "
    "Looking at the second image, we need to find the part of the object that would correspond to poking.\n(A) Point "
    "A is at the tip of the spoon's handle, which is not used for poking.\n(B) Point B is at the bottom of the spoon, "
    "which is not used for poking.\n(C) Point C is on the side of the pspoonot, which is not used for poking.\n(D) "
    "Point D is at the tip of the spoon, which is not used for poking.\n\nTherefore, there is no correct answer in "
    "the choices\nYour output: (Z)\nYour Round: \nQuestion: {}?\nOptions: {}\n(Z) Failed\nAnswer: {}\nYour output: "
)
CHOICES = ("(A)", "(B)", "(C)", "(D)", "(E)")


class BlinkJudge:
    """Maps a free-form answer to "(A)".."(E)" or "(Z)" with a chat model.

    Args:
        base_url: OpenAI-compatible API root (``/v1``); default ``$DPPO_JUDGE_BASE_URL``.
        model: judge model; default ``$DPPO_JUDGE_MODEL`` or ``gpt-3.5-turbo``.
    """

    def __init__(self, base_url: str | None = None, model: str | None = None) -> None:
        url = base_url or os.environ.get("DPPO_JUDGE_BASE_URL")
        if not url:
            raise ConfigError("the BLINK judge is not configured: set the scorer option judge_base_url (or "
                              "DPPO_JUDGE_BASE_URL), or use judge_fallback=rule")
        self.client = ChatClient(ClientConfig(
            base_url=url, model=model or os.environ.get("DPPO_JUDGE_MODEL", "gpt-3.5-turbo"),
            api_key=os.environ.get("DPPO_JUDGE_API_KEY") or None, max_tokens=None, max_retries=3))

    def match(self, question: str, choices: list[str], prediction: str) -> str:
        """The judged choice ``"(X)"``, ``"(Z)"`` for no match, or the judge's raw text when it names none."""
        options = "\n".join(f"{CHOICES[i]} {c}" for i, c in enumerate(choices[: len(CHOICES)]))
        prompt = TEMPLATE.format(f"{question}\nSelect from the following choices", options, prediction)
        try:
            content = self.client.chat([{"role": "user", "content": prompt}], temperature=0.0).text
        except ClientError as e:
            logger.warning("BLINK judge failed: %s", e)
            return "(Z) Failed to get multiple choice"
        return next((c for c in CHOICES if c in content), content)

    def close(self) -> None:
        """Release the connection pool."""
        self.client.close()
