"""Teachers: oracle targets verified; OpenAI-compatible teacher with k-vote; server down: retries, TrainingError."""

from __future__ import annotations

import socket

import pytest

from dppo_embodied.errors import ConfigError, TrainingError
from tests.helpers.fake_openai_server import FakeOpenAIServer, last_user_text
from training.algorithm.teacher import OpenAITeacher, OracleTeacher, make_teacher, rewrite, vote
from training.algorithm.teacher_config import TeacherSettings


def _answer_for(samples: list):
    by_q = {}
    for s in samples:
        by_q.setdefault(s.question, s)
    return by_q


def test_oracle_teacher_targets_pass_the_metric(samples: list) -> None:
    out = OracleTeacher(with_reasoning=True).fill(samples)
    assert all(o.verified and o.votes == 1 and o.correct == 1 for o in out)
    assert out[0].target.startswith("<think>") and out[0].target.endswith("</answer>")
    assert all("<think>" not in o.target for o in OracleTeacher().fill(samples))


def test_vote_majority_and_rewrite(samples: list) -> None:
    s = next(x for x in samples if x.metadata["template"] == "left_of")
    right, wrong = f"<think>look</think><answer>{s.answer}</answer>", "<answer>maybe</answer>"
    assert vote(s, [right, wrong, right], True).target == right
    assert vote(s, [right, wrong, wrong], True).target is None  # no strict majority
    assert vote(s, [right, wrong], False).target is None
    assert vote(s, [f"The answer is {s.answer}."], False).target == f"<answer>{s.answer}</answer>"
    assert rewrite("<think>r</think><answer>x</answer>", with_reasoning=False) == "<answer>x</answer>"


def _teacher(url: str, k: int = 1, retries: int = 1) -> OpenAITeacher:
    return OpenAITeacher(TeacherSettings(kind="openai", base_url=url, model="fake-model", k_vote=k,
                                         max_retries=retries, timeout_s=5, with_reasoning=True))


@pytest.mark.network
def test_openai_teacher_verifies_answers(samples: list) -> None:
    # the fake teacher answers right for colour questions and wrong otherwise
    def responder(req):
        text = last_user_text(req)
        return "<think>I looked.</think><answer>A</answer>" if "colour" in text else "<answer>17</answer>"

    with FakeOpenAIServer(responder=responder) as srv:
        t = _teacher(srv.url, k=3)
        out = t.fill(samples)
        t.close()
        assert len(srv.chat_requests) == 3 * len(samples)
        body = srv.chat_requests[0]["json"]
        assert body["model"] == "fake-model" and body["messages"][0]["role"] == "system"
        assert any(p.get("type") == "image_url" for p in body["messages"][1]["content"])
    for s, o in zip(samples, out, strict=False):
        expect = s.metadata["template"] == "colour" and s.answer == "A"
        assert o.verified == expect, (s.id, o)
        if expect:
            assert o.target == "<think>I looked.</think><answer>A</answer>"


@pytest.mark.network
def test_teacher_server_down_retries_then_training_error(samples: list) -> None:
    with FakeOpenAIServer(mode="error500") as srv:
        t = _teacher(srv.url, retries=2)
        pattern = r"teacher server http://127\.0\.0\.1:\d+/v1.*after 2 retries.*--resume"
        with pytest.raises(TrainingError, match=pattern):
            t.fill(samples[:2])
        assert len(srv.chat_requests) == 2 * 3  # 1 attempt + 2 retries per request
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(TrainingError, match=f"127.0.0.1:{port}"):
        _teacher(f"http://127.0.0.1:{port}/v1", retries=1).fill(samples[:1])


def test_teacher_settings_errors_name_keys() -> None:
    with pytest.raises(ConfigError, match=r"teacher\.base_url"):
        TeacherSettings(kind="openai", base_url="localhost:8000", model="m")
    with pytest.raises(ConfigError, match=r"teacher\.model"):
        TeacherSettings(kind="openai", base_url="http://127.0.0.1:8000/v1")
    with pytest.raises(ConfigError, match=r"teacher\.k_vote"):
        TeacherSettings(k_vote=0)
    assert isinstance(make_teacher(TeacherSettings()), OracleTeacher)
