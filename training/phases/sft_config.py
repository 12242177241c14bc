"""Settings of the SFT phases (``sft:`` and ``pretrain:`` in a recipe; pre-training is an SFT phase)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from dppo_embodied.config import check


@dataclass
class SFTSettings:
    """The SFT phase (TRL SFTTrainer) on D_weak ∪ D_assoc ∪ D_gen.

    Attributes:
        max_steps: optimizer steps per SFT phase.
        learning_rate: learning rate (training-stack.md: ~3e-4 for a tiny VLM).
        batch_size: samples per step (per device).
        warmup_steps: linear warm-up, then constant.
        size: samples in the SFT mix.
        ratios: D_weak : D_assoc : D_gen ([D] 1 : 2 : 2).
        synthesize_assoc: synthesise fresh D_assoc for weak capabilities with the generator (new seeds, oracle
            verified) in addition to retrieval from the pool.
        synthesize_n: fresh samples synthesised per SFT phase.
        lr_scheduler: ``constant`` (after warm-up) or ``cosine`` / ``linear`` decay to 0 over the phase (SFT phases
            always run their full step budget, so a decaying schedule is safe here, unlike in RL).
        assoc_max: at most this many D_assoc samples per phase, drawn at random (0 = all); each costs a teacher call.
        weak_max: at most this many question failures per phase go to the teacher, lowest SR first, tasks in turn
            (0 = all).
        teacher_samples: ``sft_only`` / ``sft_then_rl``: new randomly chosen candidates sent to the teacher per SFT
            phase (the ablation's equal-teacher-budget baseline).
        self_weight: ``dppo`` / ``dppo_random``: weight of D_self next to ``ratios``: the policy's own rollouts of
            the loop that passed the reward, one per solved candidate (the diagnosis's post-RL rollout, else the
            difficulty step's; a solved closed-loop seed gives its episode's steps, replayed from the seed;
            D_RL^{k+1/2} of the paper's SFT objective). They cost no teacher call and keep the
            answers the policy already gets right in the mix, so a few teacher targets do not skew its answer prior
            (docs/ablation.md, section 13). 0 = left out.
        focus_steps: steps on D_weak alone (constant rate after warm-up) before the mixed phase, each phase; 0 = none.
            A small model can need many consecutive steps on one weakness before it learns it at all (the demo's
            closed-loop pick: docs/lab/dppo-value.md, section 13), which a mix spread over every source never gives.
        focus_self: the focus steps also train on D_self, weighted ``self_weight`` against D_weak's 1, so a skill
            the policy mostly has is not trained on its failures alone (a handful of them teach a constant answer:
            docs/lab/dppo-value.md, section 20); needs ``focus_steps`` and ``self_weight`` > 0.
        replay_pretrain: D_gen also replays the base's pre-training samples (``data/pretrain.jsonl``: the general
            suite and the perception stage's task samples, pre-existing data, never charged), so SFT on the loop's
            weaknesses does not erase what the base learned to see (docs/lab/dppo-value.md, section 20).
        trainer: extra ``trl.SFTConfig`` fields (checked by name).
    """

    max_steps: int = 150
    learning_rate: float = 3e-4
    batch_size: int = 32
    warmup_steps: int = 10
    size: int = 1200
    ratios: list[float] = field(default_factory=lambda: [1.0, 2.0, 2.0])
    synthesize_assoc: bool = True
    synthesize_n: int = 512
    lr_scheduler: Literal["constant", "cosine", "linear"] = "constant"
    assoc_max: int = 0
    weak_max: int = 0
    teacher_samples: int = 64
    self_weight: float = 0.0
    focus_steps: int = 0
    focus_self: bool = False
    replay_pretrain: bool = False
    trainer: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(self.assoc_max >= 0, "sft.assoc_max", f"must be >= 0 (0 = all), got {self.assoc_max}")
        check(self.weak_max >= 0, "sft.weak_max", f"must be >= 0 (0 = all), got {self.weak_max}")
        check(self.self_weight >= 0, "sft.self_weight", f"must be >= 0 (0 = no D_self), got {self.self_weight}")
        check(self.teacher_samples >= 0, "sft.teacher_samples", f"must be >= 0, got {self.teacher_samples}")
        check(self.max_steps >= 0, "sft.max_steps", f"must be >= 0, got {self.max_steps}")
        check(self.focus_steps >= 0, "sft.focus_steps", f"must be >= 0 (0 = no focus steps), got {self.focus_steps}")
        check(not self.focus_self or (self.focus_steps > 0 and self.self_weight > 0), "sft.focus_self",
              f"mixes D_self into the focus steps; set sft.focus_steps > 0 and sft.self_weight > 0 too, got "
              f"{self.focus_steps} and {self.self_weight}")
        check(0 < self.learning_rate <= 1e-2, "sft.learning_rate", f"must be in (0, 1e-2], got {self.learning_rate}")
        check(self.batch_size >= 1, "sft.batch_size", f"must be >= 1, got {self.batch_size}")
        check(self.size >= 1, "sft.size", f"must be >= 1, got {self.size}")
        check(len(self.ratios) == 3 and all(r >= 0 for r in self.ratios) and sum(self.ratios) > 0, "sft.ratios",
              f"must be three non-negative weights [weak, assoc, gen] with a positive sum, got {self.ratios}")


@dataclass
class PretrainSettings:
    """Optional brief SFT on the general suite before the base evaluation (a stand-in for a pretrained VLM).

    Attributes:
        steps: SFT steps (0 disables pre-training).
        learning_rate: learning rate.
        batch_size: samples per step.
        n_samples: general-suite samples generated for pre-training.
        lr_scheduler: ``constant``, ``cosine`` or ``linear`` (after warm-up).
        task_share: share of pre-training samples drawn from the task generator (``data.generator``, a disjoint
            seed stream), so that the base is partly competent on the task family, like a pretrained VLM.
        task_templates: the generator templates of those task samples (empty: ``data.templates``), e.g. a
            perception stage on one template the model can learn to see (``[count_all]``, lab notebook 19).
        env_tasks: closed-loop env ids whose verified oracle demonstrations (``data.env_oracle``, a disjoint seed
            stream, in ``data.env_prompt`` style) join pre-training: a base that already follows instructions with
            the action envelope on *other* tasks, as a pretrained VLM does (e.g. push calls naming objects, before
            the loops teach pick).
        env_seeds: demonstrated seeds per env id in ``env_tasks``.
        env_share: share of pre-training rows drawn from those demonstrations (0 = none).
    """

    steps: int = 0
    learning_rate: float = 3e-4
    batch_size: int = 32
    n_samples: int = 2000
    lr_scheduler: Literal["constant", "cosine", "linear"] = "constant"
    task_share: float = 0.0
    task_templates: list[str] = field(default_factory=list)
    env_tasks: list[str] = field(default_factory=list)
    env_seeds: int = 256
    env_share: float = 0.0

    def __post_init__(self) -> None:
        check(self.steps >= 0, "pretrain.steps", f"must be >= 0, got {self.steps}")
        check(0 <= self.task_share <= 1, "pretrain.task_share", f"must be in [0, 1], got {self.task_share}")
        check(not self.task_templates or self.task_share > 0, "pretrain.task_templates",
              f"names the templates of the task samples; set pretrain.task_share > 0 too, got {self.task_share}")
        check(0 <= self.env_share < 1, "pretrain.env_share", f"must be in [0, 1), got {self.env_share}")
        check(self.env_seeds >= 1, "pretrain.env_seeds", f"must be >= 1, got {self.env_seeds}")
        check(bool(self.env_tasks) == (self.env_share > 0), "pretrain.env_tasks",
              "set pretrain.env_tasks and pretrain.env_share > 0 together (demonstrations of which envs, and how "
              f"many of the rows), got env_tasks={self.env_tasks} and env_share={self.env_share}")
