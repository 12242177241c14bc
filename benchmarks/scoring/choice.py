"""Multiple-choice scorers, each reproducing its official (Pelican-VL) extraction rule, with named variants.

Every scorer first applies Pelican's :func:`~dppo_embodied.answer_text.strip_think` unless noted
(PhyX's official MC scorer does not). ``doc.target`` is the ground-truth letter unless noted.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from benchmarks.doc import Doc
from benchmarks.scoring.base import Options, Row, SampleScore, Scorer, TaskResult, mean, pct
from benchmarks.scoring.normalize import flageval_choice
from dppo_embodied.answer_text import bounded_text, strip_think
from dppo_embodied.parsing import NoAnswer, parse_option

# -------------------------------------------------------------------------------------------------- MVBench
_MV_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")
_MV_COMMA = re.compile(r"(\d)(\,)(\d)")
_MV_PUNCT = (";", r"/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
_MV_LETTER = re.compile(r"\b([A-E])\b", re.I)


def _mv_punctuation(text: str) -> str:
    out = text
    comma = _MV_COMMA.search(text) is not None
    for p in _MV_PUNCT:
        if (p + " " in text or " " + p in text) or comma:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _MV_PERIOD.sub("", out, 32)  # the official code passes re.UNICODE (= 32) as the count


def _mv_option(answer: str) -> str | None:
    r"""The letter of lmms-eval's ``re.match(r"^([A-E])\.\s*(.+)$", answer, re.I)``, in linear time.

    The regex backtracks quadratically on "A." + spaces + "\nx\ny" (every split of the whitespace between
    ``\s*`` and ``.+`` is tried); the same language: after "X.", a non-empty last line (``.`` stops at newlines;
    ``$`` also matches before a final newline) preceded only by whitespace.
    """
    if len(answer) < 3 or answer[0] not in "ABCDEabcde" or answer[1] != ".":
        return None
    rest = answer[2:]
    end = len(rest) - 1 if rest.endswith("\n") else len(rest)
    start = rest.rfind("\n", 0, end) + 1
    return answer[0].upper() if start < end and (start == 0 or rest[:start].isspace()) else None


def mvbench_extract(answer: str) -> str:
    """lmms-eval's ``mcq_acc`` normalisation: "X. text" -> X, else the first standalone A-E (any case)."""
    letter = _mv_option(answer.strip())
    if letter is not None:
        return letter
    a = _mv_punctuation(answer.replace("\n", " ").replace("\t", " ").strip())
    a = a.strip("'").strip('"').strip(")").strip("(").strip().lower()
    m = _MV_LETTER.search(a)
    return m.group(1).upper() if m else a


class MVBenchScorer(Scorer):
    """MVBench ``mcq_acc``; per task 100 x correct / answered; overall = mean of the task scores.

    Options:
        empty: ``drop`` (official and lmms-eval: an empty answer leaves the denominator), ``wrong`` (counted as
            wrong), ``correct`` (VLMEvalKit counts an empty first token as correct).
        aggregation: ``macro`` (default, mean of the 20 task scores) or ``micro``.
    """

    OPTIONS: ClassVar[Options] = {"empty": ("drop", ("drop", "wrong", "correct")),
                                  "aggregation": ("macro", ("macro", "micro"))}

    def score(self, doc: Doc, response: str) -> SampleScore:
        pred = strip_think(response)
        if pred == "":
            empty = self.options["empty"]
            return SampleScore(None if empty == "drop" else float(empty == "correct"), "", {"empty": True})
        letter = mvbench_extract(pred)
        return SampleScore(float(letter == mvbench_extract(str(doc.target))), letter)


# ----------------------------------------------------------------------------------------- first-letter rules
class CosmosScorer(Scorer):
    """COSMOS (Cosmos-Reason1): the first capital letter anywhere ("The answer is B" -> "T"), per subset.

    Options:
        aggregation: ``macro`` (default: mean of the 5 subset accuracies) or ``micro``.
    """

    OPTIONS: ClassVar[Options] = {"aggregation": ("macro", ("macro", "micro"))}
    _CAP = re.compile(r"[A-Z]")

    def score(self, doc: Doc, response: str) -> SampleScore:
        m = self._CAP.search(strip_think(response))
        pred = m.group(0) if m else ""
        return SampleScore(float(pred == str(doc.target).upper()), pred)


class ERQAScorer(Scorer):
    """ERQA: Pelican compares the first character (periods removed, lower-cased) with the answer ("B." -> B).

    Options:
        mode: ``pelican`` (default) or ``vlmevalkit`` (``ERQADataset``: the whole stripped response must equal
            the answer, so "B." scores 0).
    """

    OPTIONS: ClassVar[Options] = {"mode": ("pelican", ("pelican", "vlmevalkit"))}

    def score(self, doc: Doc, response: str) -> SampleScore:
        pred = strip_think(response)
        gt = str(doc.target).strip().lower()
        if self.options["mode"] == "vlmevalkit":
            return SampleScore(float(pred.strip().lower() == gt), pred.strip())
        norm = pred.replace(".", "").strip().lower()
        first = norm[:1] if pred else norm
        return SampleScore(float(first == gt), first.upper())


class OmniSpatialScorer(Scorer):
    """OmniSpatial (Pelican ``eval_type: direct``): the first character, upper-cased, equals the answer letter.

    Options:
        eval_type: ``direct`` (default), ``re`` (last "Answer: X", else A) or ``json`` ({"answer": X}, else A),
            the official script's other modes.
    """

    OPTIONS: ClassVar[Options] = {"eval_type": ("direct", ("direct", "re", "json"))}
    _RE = re.compile(r"Answer\s*:\s*([A-D])\b", re.I)

    def score(self, doc: Doc, response: str) -> SampleScore:
        text = strip_think(response)
        mode = self.options["eval_type"]
        if mode == "json":
            try:
                cleaned = text.strip().removeprefix("```json").removesuffix("```").strip()
                pred = str(json.loads(cleaned).get("answer", "A")).strip().upper()[:1]
            except Exception:
                pred = "A"
        elif mode == "re":
            found = self._RE.findall(text)
            pred = found[-1] if found else "A"
        else:
            pred = text.strip().upper()[:1]
        return SampleScore(float(pred == doc.target), pred)

    def aggregate(self, rows: Sequence[Row]) -> TaskResult:
        res = super().aggregate(rows)
        res.details["task_type"] = {k: pct(v) for k, v in self.group_means(rows, "task_type").items()}
        return res


class EmbSpatialScorer(Scorer):
    """EmbSpatial-Bench: FlagEvalMM's capital-letter extraction must equal the answer letter.

    Options:
        mode: ``pelican`` (default) or ``lmms_eval`` (a letter anchored at the response start, so
            "The answer is (A)" reads "T").
    """

    OPTIONS: ClassVar[Options] = {"mode": ("pelican", ("pelican", "lmms_eval"))}
    _START = re.compile(r"\s*[(\[]?([A-Za-z])")

    def score(self, doc: Doc, response: str) -> SampleScore:
        text = strip_think(response)
        if self.options["mode"] == "lmms_eval":
            m = self._START.match(text)
            pred = m.group(1).upper() if m else ""
        else:
            pred = flageval_choice(text)
        return SampleScore(float(pred == doc.target), pred)


# ---------------------------------------------------------------------------------------------------- PhyX
_PHYX_FAIL = "Failed to obtain answer via API."
_PHYX_KEYWORD = re.compile(r"\b(?:correct|answer|option|Answer|Option|Correct)\b")
_PHYX_LETTER = re.compile(r"[A-D]")
_PHYX_COLON = re.compile(r"([ABCD]):")
_PHYX_TAIL = re.compile(r"\b([A-D])\b[\s\.\!]*$")


def phyx_mc_match(prediction: str, gt: str) -> tuple[bool, str]:
    """PhyX ``PhyX_process_line_MC`` (``quick_extract: True``): returns (match, extracted)."""
    pred = prediction.strip()
    if pred == _PHYX_FAIL:
        return False, ""
    g = gt.strip().lower()
    # the official r"\b(?:correct|...)\b[\s\S]*?([A-D])" restarts its lazy scan at every keyword (quadratic
    # without a letter); its match is the first A-D after the first keyword, if there is one
    kw = _PHYX_KEYWORD.search(pred)
    m = _PHYX_LETTER.search(pred, kw.end()) if kw else None
    extracted = ""
    if m:
        extracted = m.group(0)
        if g == extracted.lower():
            return True, extracted
    else:
        colon = _PHYX_COLON.findall(pred)
        if colon:
            extracted = colon[-1]
            if g == extracted.lower():
                return True, extracted
        else:
            tail = _PHYX_TAIL.search(pred)
            if tail:
                extracted = tail.group(1)
                if g == extracted.lower():
                    return True, extracted
    return (gt + ":" in pred or gt + "**" in pred or "**" + gt in pred), extracted


class PhyXScorer(Scorer):
    """PhyX multiple choice with the official rule-based extraction (Pelican sets ``quick_extract: True``).

    The official MC scorer does **not** remove reasoning (``strip_think: false``); set it to true to score only
    the answer part.
    """

    OPTIONS: ClassVar[Options] = {"strip_think": (False, (False, True)), "aggregation": ("micro", ("micro", "macro"))}

    def score(self, doc: Doc, response: str) -> SampleScore:
        text = strip_think(response) if self.options["strip_think"] else bounded_text(response)
        ok, extracted = phyx_mc_match(text, str(doc.target))
        return SampleScore(float(ok), extracted)


# ----------------------------------------------------------------------------------------------- EgoSchema
class EgoSchemaScorer(Scorer):
    """EgoSchema, MMMU-style parser: "(X)", "X ", "X." candidates, option text if the answer is > 5 words, else a
    **seeded** random letter; the earliest candidate wins. ``doc.target`` is the answer index ("0".."4") or
    ``None`` for the hidden full set (then the sample is excluded and only the submission is written).

    Options:
        seed: seed of the random fallback (lmms-eval seeds Python's ``random`` with 0). The scorer draws in
            dataset order, so a re-score gives the same letters.
    """

    OPTIONS: ClassVar[Options] = {"seed": (0, None)}
    _CHOICES = ("A", "B", "C", "D", "E")

    def reset(self) -> None:
        self.rng = random.Random(self.options["seed"])

    def parse(self, response: str, options: Sequence[str]) -> tuple[str, bool]:
        """The MMMU parser: ``(letter, matched)``; ``matched`` is False when the random fallback was used."""
        for ch in (",", ".", "!", "?", ";", ":", "'"):
            response = response.strip(ch)
        response = f" {response} "
        index2ans = {c: str(o).strip() for c, o in zip(self._CHOICES, options, strict=False)}
        cands: list[str] = [f"({c})" for c in self._CHOICES if f"({c})" in response]
        cands += [f"{c} " for c in self._CHOICES if f"{c} " in response]
        cands += [f"{c}." for c in self._CHOICES if f"{c}." in response]
        by_text = False
        if not cands and len(response.split(maxsplit=6)) > 5:
            cands = [c for c, ans in index2ans.items() if ans.lower() in response.lower()]
            by_text = bool(cands)
        if not cands:
            return self.rng.choice(self._CHOICES), False
        if len(cands) == 1:
            return cands[0].replace("(", "").replace(")", "").replace(".", "").strip(), True
        lower = response.lower()
        starts = [lower.rfind(index2ans[c].lower()) if by_text else response.rfind(c) for c in cands]
        return cands[int(np.argmin(starts))].replace("(", "").replace(")", "").replace(".", "").strip(), True

    def score(self, doc: Doc, response: str) -> SampleScore:
        letter, matched = self.parse(strip_think(response), doc.meta.get("options", []))
        index = self._CHOICES.index(letter) if letter in self._CHOICES else -1
        extra: dict[str, Any] = {"index": index, "random_fallback": not matched}
        if doc.target is None:
            return SampleScore(None, letter, extra)
        return SampleScore(float(str(index) == str(doc.target)), letter, extra)

    def aggregate(self, rows: Sequence[Row]) -> TaskResult:
        res = super().aggregate(rows)
        res.details["random_fallbacks"] = sum(bool(r.extra.get("random_fallback")) for r in rows)
        res.details["submission"] = {str(r.meta.get("video_idx", r.id)): r.extra.get("index", -1) for r in rows}
        return res


# ---------------------------------------------------------------------------------------------------- EgoPlan
_EGOPLAN_PREFIXES = ("The best answer is", "The correct answer is", "The answer is", "The answer",
                     "The best option is", "The correct option is", "Best answer:Best option:")


class EgoPlanScorer(Scorer):
    """EgoPlan-Bench2 (lmms-eval ``egoplan`` extractor): answer prefixes removed (the upstream list misses a comma,
    so "Best answer:" and "Best option:" only match together); more than 10 words with no A-D -> empty;
    else the first capital A-D anywhere, so "Answer: B" reads "A"."""

    OPTIONS: ClassVar[Options] = {"aggregation": ("micro", ("micro", "macro"))}
    _ABCD = re.compile(r"[ABCD]")

    def score(self, doc: Doc, response: str) -> SampleScore:
        s = strip_think(response).strip()
        for p in _EGOPLAN_PREFIXES:
            s = s.replace(p, "")
        if len(s.split()) > 10 and not self._ABCD.search(s):
            return SampleScore(0.0, "")
        m = self._ABCD.search(s)
        pred = m.group(0) if m else ""
        return SampleScore(float(pred == doc.target), pred)


# ------------------------------------------------------------------------------------------------------ BLINK
class BlinkScorer(Scorer):
    """BLINK, the official (Pelican) rule: a bare letter or "(X)" is accepted; else exactly one "(X)" token in the
    text or in its last paragraph; otherwise the official code asks a GPT-3.5 judge.

    Options:
        aggregation: ``macro`` (default: mean over the 14 subtasks, the official headline and lmms-eval's) or
            ``micro`` (VLMEvalKit's Overall).
        judge_fallback: what decides the items that need the judge: ``rule`` (default:
            :func:`dppo_embodied.parsing.parse_option`, which reads the requested "Answer: X" line), ``fail``
            (score 0, what the official code does without a judge key) or ``judge`` (the official judge prompt
            on a configured OpenAI-compatible model, see :mod:`benchmarks.scoring.judge`). The share of such items
            is reported.
        judge_base_url / judge_model: the judge server and model (``judge_fallback=judge`` only).
    """

    OPTIONS: ClassVar[Options] = {"aggregation": ("macro", ("macro", "micro")),
                                  "judge_fallback": ("rule", ("rule", "fail", "judge")),
                                  "judge_base_url": (None, None), "judge_model": (None, None)}
    _LETTERS = ("A", "B", "C", "D", "E")

    def reset(self) -> None:
        self._judge: Any = None
        if self.options["judge_fallback"] == "judge":
            from benchmarks.scoring.judge import BlinkJudge

            self._judge = BlinkJudge(self.options["judge_base_url"], self.options["judge_model"])

    def score(self, doc: Doc, response: str) -> SampleScore:
        answer = strip_think(response)
        choices = doc.meta.get("choices", [])
        all_choices = [f"({c})" for c in self._LETTERS][: len(choices)]
        gt = str(doc.target) if "(" in str(doc.target) else f"({doc.target})"
        needs_judge = False
        if answer in self._LETTERS:
            pred = f"({answer})"
        elif answer in [f"({c})" for c in self._LETTERS]:
            pred = answer
        else:
            inter = set(all_choices) & set(answer.split())
            inter_last = set(all_choices) & set(answer.split("\n\n")[-1].split())
            if (len(inter) != 1 and len(inter_last) != 1) or len(inter) < 1:
                needs_judge = True
                pred = "(Z)"
                if self.options["judge_fallback"] == "rule":
                    letter = parse_option(answer, num_options=len(choices), options=list(choices))
                    pred = "(Z)" if isinstance(letter, NoAnswer) else f"({letter})"
                elif self._judge is not None:
                    pred = self._judge.match(str(doc.meta.get("question", "")), list(choices), answer)
            else:
                pred = next(iter(inter_last if len(inter_last) == 1 else inter))
        return SampleScore(float(pred.strip() == gt), pred, {"needs_judge": needs_judge})

    def aggregate(self, rows: Sequence[Row]) -> TaskResult:
        res = super().aggregate(rows)
        n_judge = sum(bool(r.extra.get("needs_judge")) for r in rows)
        res.details["needs_judge"] = n_judge
        res.details["needs_judge_share"] = pct(n_judge / len(rows)) if rows else None
        res.details["micro"] = pct(mean([r.score for r in rows if r.score is not None]))
        return res
