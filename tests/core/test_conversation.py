import numpy as np
from PIL import Image

from dppo_embodied.conversation import Conversation


def test_layouts_and_wire_forms_agree():
    im = np.zeros((8, 10, 3), np.uint8)
    c = Conversation("hi", [im, Image.new("RGB", (4, 4))], system="sys")
    m = c.chat_messages()
    assert m[0] == {"role": "system", "content": [{"type": "text", "text": "sys"}]}
    assert [p["type"] for p in m[1]["content"]] == ["image", "image", "text"]
    o = c.openai_messages()
    assert [p["type"] for p in o[1]["content"]] == ["image_url", "image_url", "text"]
    assert o[1]["content"][0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    s = Conversation("hi", [im], media_first=False)
    assert [p["type"] for p in s.chat_messages()[0]["content"]] == ["text", "image"]
    assert s.signature()[0]["content"][1]["image"] == "8x10x3"
    assert s.signature(True) != Conversation("hi", [im + 1], media_first=False).signature(True)
    assert Conversation("", []).chat_messages()[0]["content"] == [{"type": "text", "text": ""}]


def test_earlier_turns_take_the_first_images_in_order() -> None:
    a, b, c = (np.full((4, 4, 3), v, np.uint8) for v in (10, 20, 30))
    history = ({"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what is this?"}]},
               {"role": "assistant", "content": [{"type": "text", "text": "a cube"}]})
    conv = Conversation("and this?", (a, b, c), system="sys", history=history)
    assert conv.history_images == 1
    msgs = conv.chat_messages()
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert [p["type"] for p in msgs[-1]["content"]] == ["image", "image", "text"]
    wire = conv.openai_messages()
    assert [p["type"] for p in wire[1]["content"]] == ["image_url", "text"]
    sig = conv.signature(with_pixels=True)
    assert sig[1]["content"][0]["image"] == Conversation("", (a,)).signature(True)[0]["content"][0]["image"]
    # a chat kept as the client sent it: the last user turn is in the history and the conversation adds none
    last = {"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "image"},
                                        {"type": "text", "text": "y"}, {"type": "image"}]}
    sent = (*history, last)
    kept = Conversation("", (a, b, c), history=sent).chat_messages()
    assert len(kept) == 3 and kept[-1]["content"][1:] == [{"type": "image"}, {"type": "text", "text": "y"},
                                                         {"type": "image"}]


def test_render_sample_and_request() -> None:
    from dppo_embodied.generation import ChatRequest, GenerationSettings
    from dppo_embodied.rendering import ANSWER_INSTRUCTION, prompt_text, render_sample
    from dppo_embodied.types import AnswerType, EmbodiedSample

    img = Image.new("RGB", (6, 4), (1, 2, 3))
    s = EmbodiedSample("s", "t", " Which? ", "B", AnswerType.MCQ, images=[], options=["red", "blue"])
    assert prompt_text(s) == f"Which?\n(A) red\n(B) blue\n{ANSWER_INSTRUCTION}"
    conv = render_sample(s, system="teach")
    assert conv == Conversation(prompt_text(s), (), "teach")

    class Doc:  # what a benchmark doc provides
        prompt, system, images, video = "Q?", "doc system", [img], None

    doc_conv = render_sample(Doc())
    assert doc_conv.text == "Q?" and doc_conv.system == "doc system" and doc_conv.media_first
    assert doc_conv.signature(True) == Conversation("Q?", [img], "doc system").signature(True)
    req = ChatRequest(doc_conv, GenerationSettings(max_tokens=8), "d1")
    assert req.settings.key() == (8, 0.0, 1.0, (), 1) and hash(req.settings) == hash(GenerationSettings(8))
