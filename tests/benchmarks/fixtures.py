"""Tiny datasets written by the tests in each benchmark's real (Hugging Face snapshot) layout."""

from __future__ import annotations

import base64
import functools
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def png_bytes(color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (32, 24)) -> bytes:
    """A small solid RGB PNG."""
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


@functools.lru_cache(maxsize=4)
def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A valid all-black 1-bit PNG of ``width x height`` that compresses to ~0.1 % (30000 x 30000: ~110 kB)."""
    import struct
    import zlib

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def truncated_jpeg(size: tuple[int, int] = (256, 256)) -> bytes:
    """The first half of a JPEG: the header parses, decoding fails."""
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, format="JPEG")
    data = buf.getvalue()
    return data[: len(data) // 2]


def save_image(path: Path, color: tuple[int, int, int] = (30, 120, 200), size: tuple[int, int] = (32, 24)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def mask_image(size: tuple[int, int] = (640, 480), box: tuple[int, int, int, int] = (300, 200, 400, 300),
               value: int = 255) -> np.ndarray:
    """(H, W) uint8: ``value`` inside ``box`` = (x0, y0, x1, y1), exclusive ends, 0 elsewhere."""
    m = np.zeros((size[1], size[0]), dtype=np.uint8)
    x0, y0, x1, y1 = box
    m[y0:y1, x0:x1] = value
    return m


def mask_png(mask: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(mask).save(buf, format="PNG")
    return buf.getvalue()


def write_video(path: Path, n_frames: int = 20, fps: float = 10.0, size: tuple[int, int] = (32, 24)) -> Path:
    """An mp4 whose frame i is filled with gray level 10 * i (so decoded frames reveal their index)."""
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    assert w.isOpened(), "OpenCV cannot write mp4v here"
    for i in range(n_frames):
        w.write(np.full((size[1], size[0], 3), min(255, 10 * i), dtype=np.uint8))
    w.release()
    return path


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def image_struct(data: bytes, name: str = "x.png") -> dict[str, Any]:
    return {"bytes": data, "path": name}


def write_card(root: Path, configs: list[dict[str, Any]], extra: str = "license: mit\n") -> Path:
    """A dataset README whose YAML front matter lists ``configs`` (the published card's ``configs:`` block)."""
    import yaml

    root.mkdir(parents=True, exist_ok=True)
    front = extra + yaml.safe_dump({"configs": configs}, sort_keys=False)
    (root / "README.md").write_text(f"---\n{front}---\n\n# Dataset card\n\nProse the resolver ignores.\n",
                                    encoding="utf-8")
    return root / "README.md"


def task_card(task: str) -> list[dict[str, Any]]:
    """The ``card:`` block a task YAML declares (the published card's configs)."""
    from benchmarks.task import TaskManager

    return TaskManager().get(task).card


def complete_snapshot(root: Path, card: list[dict[str, Any]]) -> list[Path]:
    """Write every file ``card`` lists that the fixture left out (a copy of a written file with the same extension,
    so each split has rows), as a complete snapshot has them; returns the files written."""
    from benchmarks.cards import parse_configs

    written: list[Path] = []
    parsed = parse_configs(card, "card", root)
    templates = {p.suffix: p for p in root.rglob("*") if p.is_file() and p.name != "README.md"}
    for cfg in parsed.configs:
        for patterns in cfg.data_files.values():
            pattern = patterns[0]
            name = pattern.replace("*", "00000-of-00001.parquet") if pattern.endswith("*") else pattern
            target = root / name
            if any(root.glob(pattern)) or target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(templates[target.suffix].read_bytes())
            written.append(target)
    return written


# ------------------------------------------------------------------------------------------------- datasets
def make_mvbench(root: Path, videos: bool = False) -> Path:
    """Two tasks x 3 questions; answers A, B, C in order; the README card lists all 20 tasks (only these two
    files exist, so only they can be selected)."""
    for sub, folder in (("action_sequence", "star/Charades_segment"), ("action_count", "perception/videos")):
        rows = []
        for i in range(3):
            cands = ["open the door", "close the door", "wave"]
            rows.append({"video": f"{sub}_{i}.mp4", "question": f"What happened {i}?", "candidates": cands,
                         "answer": cands[i], **({"start": 0.5, "end": 1.5} if sub == "action_count" else {})})
            if videos:
                write_video(root / "video" / folder / f"{sub}_{i}.mp4")
        write_json(root / "json" / f"{sub}.json", rows)
    write_card(root, task_card("mvbench"))
    return root


def make_vsibench(root: Path, videos: bool = False) -> Path:
    rows = [
        {"id": 1, "dataset": "scannet", "scene_name": "scene0", "question_type": "object_counting",
         "question": "How many chairs?", "ground_truth": "4", "options": None},
        {"id": 2, "dataset": "scannet", "scene_name": "scene0", "question_type": "object_abs_distance",
         "question": "How far (m)?", "ground_truth": "2.0", "options": None},
        {"id": 3, "dataset": "scannet", "scene_name": "scene0", "question_type": "object_rel_direction_easy",
         "question": "Where is the bed?", "ground_truth": "A", "options": ["A. left", "B. right"]},
        {"id": 4, "dataset": "scannet", "scene_name": "scene0", "question_type": "object_rel_direction_hard",
         "question": "Where is the sofa?", "ground_truth": "B", "options": ["A. left", "B. right"]},
        {"id": 5, "dataset": "scannet", "scene_name": "scene0", "question_type": "route_planning",
         "question": "Which route?", "ground_truth": "C", "options": ["A. a", "B. b", "C. c"]},
        {"id": 6, "dataset": "scannet", "scene_name": "scene0", "question_type": "route_planning",
         "question": "Which route now?", "ground_truth": "A", "options": ["A. a", "B. b", "C. c"]},
    ]
    write_parquet(root / "test-00000-of-00001.parquet", rows)
    if videos:
        write_video(root / "scannet" / "scene0.mp4")
    return root


def make_where2place(root: Path) -> Path:
    """3 questions on 640 x 480 images; masks: a 255 box, a soft (153) box, a 255 box."""
    rows = []
    for i, value in enumerate((255, 153, 255)):
        save_image(root / "images" / f"{i:02d}.jpg", size=(640, 480))
        (root / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask_image(value=value)).save(root / "masks" / f"{i:02d}.png")
        rows.append({"question_id": i, "image": f"{i:02d}.jpg", "mask": f"{i:02d}.png",
                     "text": "Locate several points in the free space. Output (x, y) tuples normalized to [0, 1]."})
    write_jsonl(root / "point_questions.jsonl", rows)
    return root


BLINK_CONFIGS = {"counting": "Counting", "jigsaw": "Jigsaw"}


def make_blink(root: Path) -> Path:
    """Counting: 3 questions (answers A, B, A); Jigsaw: 1 question (answer B)."""
    answers = {"Counting": ["(A)", "(B)", "(A)"], "Jigsaw": ["(B)"]}
    for config, ans in answers.items():
        rows = [{"idx": f"val_{config}_{i + 1}", "question": "How many?", "sub_task": config,
                 "image_1": image_struct(png_bytes()), "image_2": None, "image_3": None, "image_4": None,
                 "choices": ["2", "3"], "answer": a, "prompt": "How many?\nSelect from the following choices.\n"
                 "(A) 2\n(B) 3"} for i, a in enumerate(ans)]
        write_parquet(root / config / "val-00000-of-00001.parquet", rows)
    write_card(root, task_card("blink"))
    return root


def make_ref_spatial(root: Path) -> Path:
    """location: 2 rows; placement: 1 row; masks 640 x 480 with the box x 300-399, y 200-299."""
    mask = mask_png(mask_image())
    for split, n in (("location", 2), ("placement", 1)):
        rows = [{"id": i + 1, "image": image_struct(png_bytes(size=(640, 480))), "mask": image_struct(mask),
                 "prompt": f"Point to the free spot {i}.", "suffix": "Answer with (x, y) normalized points.",
                 "object": "spot", "step": 1} for i in range(n)]
        write_parquet(root / "data" / f"{split}-00000-of-00001.parquet", rows)
    write_card(root, task_card("ref_spatial_bench"))
    return root


def make_robo_spatial(root: Path) -> Path:
    poly = "[(0.2, 0.2), (0.6, 0.25), (0.55, 0.6), (0.15, 0.55)]"
    ctx = [{"img": image_struct(png_bytes()), "category": "context", "answer": poly,
            "question": "Find free space right of the mug. Your answer should be formatted as a list of tuples, i.e. "
            "[(x1, y1), ...], where each tuple contains the x and y coordinates of a point satisfying the conditions "
            "above. The coordinates should be between 0 and 1, indicating the normalized pixel locations of the "
            "points."} for _ in range(2)]
    comp = [{"img": image_struct(png_bytes()), "category": "compatibility", "answer": a,
             "question": "Can the box fit in the drawer? Answer yes or no."} for a in ("yes", "no")]
    write_parquet(root / "data" / "context-00000-of-00001.parquet", ctx)
    write_parquet(root / "data" / "compatibility-00000-of-00001.parquet", comp)
    return root


def make_emb_spatial(root: Path) -> Path:
    b64 = base64.b64encode(png_bytes()).decode()
    rows = [{"question_id": f"mp3d_{i}", "question": "Which object is left of the bed?",
             "answer_options": ["lamp", "chair", "table", "sofa"], "answer": i % 4, "relation": "left",
             "data_source": "mp3d", "image": b64} for i in range(3)]
    write_json(root / "embspatial_bench.json", rows)
    return root


def make_cosmos(root: Path, subsets: tuple[str, ...] = ("robovqa", "robofail")) -> Path:
    write_card(root, task_card("cosmos"))
    for sub in subsets:
        rows = [{"video": f"clips/{sub}_{i}.mp4", "qa_pairs": {"question": "Is the task done?",
                 "index2ans": {"A": "yes", "B": "no"}, "answer": "A" if i == 0 else "B"}} for i in range(2)]
        write_json(root / sub / f"{sub}_benchmark_qa_pairs.json", rows)
    return root


def make_erqa(root: Path, missing_image: bool = False) -> Path:
    rows = []
    for i in range(3):
        img = root / "images" / f"ex{i + 1}_img1.jpg"
        if not (missing_image and i == 1):
            save_image(img)
        rows.append({"question": f"Which way? A. left B. right C. up D. down ({i})", "answer": "ABC"[i],
                     "question_type": "Trajectory Reasoning", "visual_indices": [0],
                     "images": [str(img.relative_to(root))]})
    write_jsonl(root / "erqa.jsonl", rows)
    return root


def make_egoschema(root: Path, videos: bool = False) -> Path:
    opts = [f"{c}. option {c.lower()}" for c in "ABCDE"]
    sub = [{"question_idx": str(i), "question": f"What is c doing {i}?", "video_idx": f"vid{i}",
            "option": opts, "answer": str(i)} for i in range(3)]
    write_parquet(root / "Subset" / "test-00000-of-00001.parquet", sub)
    full = [{**r, "answer": ""} for r in sub]
    write_parquet(root / "GENERATION" / "test-00000-of-00001.parquet", full)
    write_card(root, task_card("egoschema"))
    if videos:
        for r in sub:
            write_video(root / "videos" / f"{r['video_idx']}.mp4")
    return root


def make_phyx(root: Path) -> Path:
    b64 = base64.b64encode(png_bytes()).decode()
    rows = [{"index": 100 + i, "question": "A ball falls. Which graph? A: x B: y C: z D: w", "image": b64,
             "answer": "ABCD"[i], "category": "Mechanics"} for i in range(2)]
    write_parquet(root / "data_llms_eval" / "PhyX_mini_MC.parquet", rows)
    write_card(root, task_card("phyx_mini_mc"))
    return root


def make_omni_spatial(root: Path) -> Path:
    base = root / "OmniSpatial-test"
    rows = [{"id": f"{i}_0", "task_type": "Perspective_Taking", "sub_task_type": "egocentric",
             "question": "Which is on my left?", "options": ["cup", "book", "pen", "lamp"], "answer": i}
            for i in range(2)]
    for r in rows:
        save_image(base / "Perspective_Taking" / f"{r['id'].split('_')[0]}.png")
    write_json(base / "data.json", rows)
    return root
