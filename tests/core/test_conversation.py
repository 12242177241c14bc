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
