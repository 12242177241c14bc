"""The simulated embodied world of dppo-embodied (torch-free; MuJoCo is imported only when a scene is built).

What the other packages use (all names are stable):

* ``envs.qa.generate(suite="tabletop-qa", n=..., seed=..., capabilities=None, difficulty=None, out_dir=None,
  image_size=96, progress=True, split="train") -> list[EmbodiedSample]`` — procedural embodied QA whose answers
  come from simulator state or a simulated rollout, over all 9 capabilities; ``"replay"`` is the general
  perception suite for forgetting checks. Deterministic per (suite, seed, split, index). The held-out split
  (``split="heldout"``) draws every scene from a disjoint seed stream. ``envs.qa.question_templates()`` returns
  representative question/answer texts (a tokenizer corpus). CLI: ``dppo data generate``.
* Gymnasium ids registered on ``import envs`` (lazy ``"module:Class"`` entry points): ``dppo/TabletopPick-v0``,
  ``dppo/TabletopPush-v0``, ``dppo/TabletopPlace-v0``, ``dppo/TabletopStack-v0``, ``dppo/TabletopStack3-v0``
  and ``dppo/PushT-v0`` (needs the optional ``gym-pusht``). Create them with :func:`make` (typed errors) or
  ``gymnasium.make``. The action is the model's raw text (:mod:`dppo_embodied.actions` envelope); the
  observation is ``{"image": (H, W, 3) uint8, "depth": (H, W) float32, "instruction": str, "feedback": str,
  "history": tuple[str, ...], "skills": tuple[str, ...]}`` (+ ``"state"`` with ``include_state=True``; PushT has no
  depth), everything :func:`dppo_embodied.episode.render_step` needs; ``info`` has ``is_success``, ``progress``,
  ``parse_ok``, ``parse_error``, ``command``, ``invalid_count``.
* ``envs.experts.expert_action(env, thought=False) -> str``: the scripted expert's text action for the current
  state; ``envs.experts.plan_action(scene, task, camera) -> Action`` is the same on a bare scene (the twin).
* ``envs.rollout.run_episode(env, act, seed, max_steps=None, style="full") -> EpisodeResult``: the core's episode
  runner (:mod:`dppo_embodied.episode`); ``act`` maps each step's conversation to the model's reply.
* ``envs.twin.TabletopTwinRobot``: the sim twin behind the :class:`dppo_embodied.robot.Robot` protocol, with its
  own ``profile``; declared as the ``sim`` plugin of the ``dppo_embodied.robots`` entry-point group (pyproject).
* ``envs.lerobot_dataset``: ``LeRobotDatasetV3`` (reader; ``to_samples`` builds QA from episodes); datasets are
  written by the core's one writer, ``dppo_embodied.lerobot_writer.LeRobotWriter``; no ``lerobot`` import.
* Catalogues for ``dppo list``: ``envs.catalogue:envs`` and ``envs.catalogue:qa_suites``.

The per-step prompt of the text-action envelope lives in :mod:`dppo_embodied.prompts`, the step renderer in
:mod:`dppo_embodied.episode` (shared with training, the benchmarks and the bridge).
"""

from __future__ import annotations

from typing import Any

from dppo_embodied.errors import ConfigError, UnknownNameError
from dppo_embodied.registry import load_entry_point

#: env id -> (entry point, one-line help, default kwargs)
ENV_SPECS: dict[str, tuple[str, str]] = {
    "dppo/TabletopPick-v0": ("envs.tabletop:TabletopPickEnv", "pick up the named object (horizon 15)"),
    "dppo/TabletopPush-v0": ("envs.tabletop:TabletopPushEnv", "push an object onto the target disc (horizon 20)"),
    "dppo/TabletopPlace-v0": ("envs.tabletop:TabletopPlaceEnv", "pick and place onto the target disc (horizon 20)"),
    "dppo/TabletopStack-v0": ("envs.tabletop:TabletopStackEnv", "stack one object on another (horizon 30)"),
    "dppo/TabletopStack3-v0": ("envs.tabletop:TabletopStack3Env", "build a three-object tower (horizon 50)"),
    "dppo/PushT-v0": ("envs.pusht:PushTTextEnv", "LeRobot's gym-pusht with point actions (needs gym-pusht)"),
}


def _register() -> None:
    import gymnasium

    for env_id, (entry_point, _) in ENV_SPECS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry_point, disable_env_checker=True)


def env_ids() -> list[str]:
    """The registered env ids, sorted."""
    return sorted(ENV_SPECS)


def make(env_id: str, **kwargs: Any) -> Any:
    """Create a registered env.

    Args:
        env_id: e.g. ``"dppo/TabletopPick-v0"``.
        **kwargs: env options (``image_size``, ``horizon``, ``max_invalid``, ``n_objects``, ``include_state``...).

    Raises:
        UnknownNameError: for an unknown id, listing the valid ones.
        EnvError / ConfigError: for a bad option value (the message names it and the valid choices).
    """
    import inspect

    import gymnasium

    if env_id not in ENV_SPECS:
        raise UnknownNameError("env id", env_id, ENV_SPECS)
    _register()
    cls = load_entry_point(ENV_SPECS[env_id][0])
    plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    valid = sorted({name for c in cls.__mro__ if "__init__" in vars(c)
                    for name, p in inspect.signature(c.__init__).parameters.items()
                    if name != "self" and p.kind in plain})
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown} for {env_id}; valid: {', '.join(valid)}")
    return gymnasium.make(env_id, **kwargs)


_register()
