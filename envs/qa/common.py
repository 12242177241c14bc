"""Shared machinery of the QA generators: difficulty knobs, the per-sample context, media writing, state recording.

A template is a function ``template(ctx) -> EmbodiedSample | None``; it draws a scene with ``ctx.new_scene()``,
reads the answer from simulator state (or from a rollout it simulates), writes its images through ``ctx`` and
returns ``None`` when the drawn scene does not suit it (the generator then retries with the next draw from the
same deterministic random stream).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from dppo_embodied.errors import ConfigError
from dppo_embodied.media import write_h264
from dppo_embodied.types import AnswerType, EmbodiedSample, VideoRef
from envs.scene import CAMERAS, TabletopScene
from envs.spec import MAX_OBJECTS, SceneSpec, sample_scene


@dataclass
class Difficulty:
    """Curriculum knobs.

    Attributes:
        n_objects: objects per scene, an inclusive ``[low, high]`` range within 1..8 (or one int).
        distractors: objects sharing the colour or shape of object 0 (harder grounding).
        clip_s: target clip length of temporal questions, seconds (more events in longer clips).
        fps: frames per second sampled from clips.
        max_frames: cap on frames per clip.
        stacks: initial two-object stacks (planning questions need unstacking).
        camera: the tabletop camera of single-view questions (:data:`envs.scene.CAMERAS`: ``front``, or ``close``,
            the same view moved in until the table fills the frame); two-view questions keep ``front`` and ``top``.
    """

    n_objects: Any = (2, 5)
    distractors: int = 0
    clip_s: float = 2.0
    fps: float = 2.0
    max_frames: int = 8
    stacks: int = 0
    camera: str = "front"

    def __post_init__(self) -> None:
        n = self.n_objects
        lo, hi = (n, n) if isinstance(n, int) else tuple(n)
        if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi <= MAX_OBJECTS):
            raise ConfigError(f"difficulty n_objects must be an int or [low, high] within 1..{MAX_OBJECTS}, got {n!r}")
        self.n_objects = (lo, hi)
        if not 0 <= self.distractors <= 4:
            raise ConfigError(f"difficulty distractors must be 0..4, got {self.distractors!r}")
        if not 0.5 <= float(self.clip_s) <= 30:
            raise ConfigError(f"difficulty clip_s must be 0.5..30 seconds, got {self.clip_s!r}")
        if not 0.25 <= float(self.fps) <= 30:
            raise ConfigError(f"difficulty fps must be 0.25..30, got {self.fps!r}")
        if not 2 <= int(self.max_frames) <= 64:
            raise ConfigError(f"difficulty max_frames must be 2..64, got {self.max_frames!r}")
        if not 0 <= self.stacks <= 3:
            raise ConfigError(f"difficulty stacks must be 0..3, got {self.stacks!r}")
        if self.camera not in CAMERAS:
            raise ConfigError(f"difficulty camera must be one of {', '.join(CAMERAS)}, got {self.camera!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Difficulty:
        """Build from a dict, rejecting unknown keys (the error lists the valid ones)."""
        d = dict(d or {})
        valid = [f.name for f in fields(cls)]
        bad = sorted(set(d) - set(valid))
        if bad:
            raise ConfigError(f"unknown difficulty key(s) {bad}; valid: {', '.join(valid)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        d["n_objects"] = list(self.n_objects)
        return d


@dataclass
class Snapshot:
    """Everything needed to re-render one moment of a rollout."""

    time_s: float
    qpos: np.ndarray
    mocap: np.ndarray
    closed: bool
    held: int | None


class Recorder:
    """Records a :class:`Snapshot` every control tick (cheap) so frames can be rendered afterwards."""

    def __init__(self, scene: TabletopScene) -> None:
        self.scene = scene
        self.snaps: list[Snapshot] = [self.snap()]

    def snap(self) -> Snapshot:
        """The scene's state now."""
        sc = self.scene
        return Snapshot(sc.time_s, sc.data.qpos.copy(), sc.data.mocap_pos.copy(), sc.gripper_closed, sc.held)

    def __call__(self, scene: TabletopScene) -> None:
        self.snaps.append(self.snap())

    def restore(self, s: Snapshot) -> None:
        """Put the scene back into snapshot ``s`` (for rendering only)."""
        sc = self.scene
        sc.data.qpos[:] = s.qpos
        sc.data.mocap_pos[:] = s.mocap
        held = sc.held
        sc.held = s.held
        sc.set_gripper(s.mocap[0], closed=s.closed)
        sc.held = held
        sc.forward()

    def at(self, t: float) -> Snapshot:
        """The last snapshot at or before time ``t`` (seconds since the first one)."""
        t0 = self.snaps[0].time_s
        best = self.snaps[0]
        for s in self.snaps:
            if s.time_s - t0 <= t + 1e-9:
                best = s
            else:
                break
        return best

    @property
    def duration(self) -> float:
        """Recorded time span, seconds."""
        return self.snaps[-1].time_s - self.snaps[0].time_s


class QAContext:
    """Per-sample state handed to a template: RNG, scene, difficulty, and media writers.

    Attributes:
        rng: the sample's random generator (deterministic per suite, seed, split, index).
        scene: the shared :class:`TabletopScene`.
        difficulty: the :class:`Difficulty` in force.
        sample_id: the sample's id.
        media_dir: folder that receives this sample's images.
    """

    def __init__(self, rng: np.random.Generator, scene: TabletopScene, difficulty: Difficulty, sample_id: str,
                 media_dir: Path, source: str, videos: bool = False) -> None:
        self.rng = rng
        self.scene = scene
        self.difficulty = difficulty
        self.sample_id = sample_id
        self.media_dir = media_dir
        self.source = source
        self.videos = videos
        self.spec: SceneSpec | None = None
        self._stem = sample_id.replace("/", "_")
        self._n_media = 0

    # ------------------------------------------------------------------------------------------------- scenes
    def new_scene(self, n_objects: tuple[int, int] | int | None = None, stacks: int | None = None,
                  shapes: tuple[str, ...] | None = None, distractors: int | None = None) -> SceneSpec:
        """Draw and load a scene with the difficulty's knobs (overridable), objects at rest."""
        d = self.difficulty
        spec = sample_scene(self.rng, d.n_objects if n_objects is None else n_objects,
                            distractors=d.distractors if distractors is None else distractors,
                            stacks=d.stacks if stacks is None else stacks, shapes=shapes)
        self.scene.load(spec)
        self.spec = spec
        return spec

    def pick(self, seq: list[Any] | tuple[Any, ...], k: int | None = None) -> Any:
        """Random element (or ``k`` distinct elements) of ``seq``."""
        if k is None:
            return seq[int(self.rng.integers(len(seq)))]
        idx = self.rng.choice(len(seq), size=k, replace=False)
        return [seq[int(i)] for i in idx]

    # ------------------------------------------------------------------------------------------------- media
    def _path(self, kind: str, ext: str) -> Path:
        self._n_media += 1
        self.media_dir.mkdir(parents=True, exist_ok=True)
        return self.media_dir / f"{self._stem}_{kind}{self._n_media}.{ext}"

    def save_image(self, rgb: np.ndarray) -> str:
        """Write an RGB frame as PNG; returns its absolute path."""
        p = self._path("img", "png")
        Image.fromarray(rgb).save(p, compress_level=1)
        return str(p.resolve())

    def save_mask(self, mask: np.ndarray) -> str:
        """Write a boolean mask as an 8-bit PNG (255 = inside); returns its absolute path."""
        p = self._path("mask", "png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(p, compress_level=1)
        return str(p.resolve())

    @property
    def camera(self) -> str:
        """The camera of single-view questions (the difficulty's ``camera``)."""
        return self.difficulty.camera

    def render(self, camera: str | None = None) -> str:
        """Render the current scene (default: :attr:`camera`) and save it; returns the image path."""
        return self.save_image(self.scene.render(camera or self.camera))

    def save_clip(self, rec: Recorder, camera: str | None = None) -> tuple[list[str], VideoRef | None, dict[str, Any]]:
        """Render frames of a recorded rollout at the difficulty's fps (capped at ``max_frames``).

        Returns:
            ``(frame paths, VideoRef or None, metadata with horizon_s, num_frames, fps, frame_times)``.
        """
        d = self.difficulty
        dur = rec.duration
        n = min(int(d.max_frames), max(2, math.floor(dur * d.fps) + 1))
        times = [dur * k / (n - 1) for k in range(n)]
        frames = []
        for t in times:
            rec.restore(rec.at(t))
            frames.append(self.scene.render(camera or self.camera))
        rec.restore(rec.snaps[-1])
        paths = [self.save_image(f) for f in frames]
        fps_eff = (n - 1) / dur if dur > 0 else d.fps
        video = None
        if self.videos:
            video = VideoRef(self._write_video(frames, fps_eff), fps=round(fps_eff, 4), start=0.0, end=round(dur, 3),
                             num_frames=n)
        meta = {"horizon_s": round(dur, 2), "num_frames": n, "fps": round(fps_eff, 3),
                "frame_times": [round(t, 2) for t in times]}
        return paths, video, meta

    def _write_video(self, frames: list[np.ndarray], fps: float) -> str:
        """The clip as H.264 MP4 through the one video writer (:func:`dppo_embodied.media.write_h264`), at the
        clip's own (fractional) fps so the file's timestamps match the VideoRef."""
        return str(write_h264(self._path("clip", "mp4"), frames, fps).resolve())

    # ------------------------------------------------------------------------------------------------- samples
    def sample(self, template: str, capabilities: list[str], question: str, answer: Any, answer_type: AnswerType,
               images: list[str], reasoning: str, options: list[str] | None = None,
               video: VideoRef | None = None, **meta: Any) -> EmbodiedSample:
        """Assemble an :class:`EmbodiedSample` with the standard metadata."""
        sc = self.scene
        metadata: dict[str, Any] = {"template": template, "image_size": [sc.width, sc.height],
                                    "difficulty": self.difficulty.to_dict()}
        if self.spec is not None:
            metadata["num_objects"] = len(self.spec.objects)
        metadata.update(meta)
        return EmbodiedSample(id=self.sample_id, source=self.source, question=question, answer=answer,
                              answer_type=answer_type, images=images, video=video, options=list(options or []),
                              capabilities=capabilities, reasoning=reasoning, metadata=metadata)

    def mcq(self, correct: str, distractors: list[str], n: int = 4) -> tuple[list[str], str]:
        """Shuffle ``correct`` among up to ``n - 1`` distinct distractors; returns ``(options, letter)``."""
        pool = [d for d in dict.fromkeys(distractors) if d != correct]
        chosen = self.pick(pool, min(n - 1, len(pool))) if pool else []
        opts = [correct, *chosen]
        order = self.rng.permutation(len(opts))
        opts = [opts[int(i)] for i in order]
        return opts, chr(ord("A") + opts.index(correct))


Template = Callable[[QAContext], EmbodiedSample | None]


def cm(v: float) -> int:
    """Metres -> whole centimetres (half up)."""
    return math.floor(v * 100 + 0.5)


def fmt_xy(p: np.ndarray) -> str:
    """``(x, y)`` of a world point in whole cm, e.g. ``"(12, -3) cm"``."""
    return f"({cm(p[0])}, {cm(p[1])}) cm"


def point_in_mask(mask: np.ndarray) -> tuple[float, float] | None:
    """A normalized point well inside ``mask``: the mask pixel nearest to its centroid (pixel centres)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    cy, cx = ys.mean(), xs.mean()
    k = int(np.argmin((ys - cy) ** 2 + (xs - cx) ** 2))
    h, w = mask.shape
    return round((xs[k] + 0.5) / w, 3), round((ys[k] + 0.5) / h, 3)
