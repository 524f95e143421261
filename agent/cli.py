"""The `swe-reasoner` command: the composition root.

Each subcommand imports what it needs lazily, so that `solve` never loads
torch and the language server starts fast. Exit codes: 0 done, 1 no result,
2 usage or configuration error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .errors import Cancelled, SweReasonerError


def _model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (default: the settings files)")
    g.add_argument("--model", help="a GGUF file, or smollm2-135m (the tiny demo model)")
    g.add_argument("--api-base", help="an OpenAI-compatible server's /v1 URL")
    g.add_argument("--api-model", help="the model's name on that server")
    g.add_argument("--n-ctx", type=int, help="context size in tokens (llama.cpp)")
    g.add_argument("--n-gpu-layers", type=int, help="layers on the GPU; -1 all, 0 none (llama.cpp)")
    g.add_argument("--max-tokens", type=int, help="tokens the model may generate per answer")


def _solve_flags(p: argparse.ArgumentParser, budget_help: str) -> None:
    """How candidates are searched for and verified: the flags `solve` and `eval` share."""
    from .config import SANDBOXES, STRATEGIES, TEST_ENVS

    p.add_argument("--budget", type=int, help=budget_help)
    p.add_argument("--strategy", choices=STRATEGIES,
                   help="how the candidates are chosen (default dev-search; see docs/search.md)")
    p.add_argument("--adaptive", action="store_true", default=None,
                   help="stop sampling patches once one verifies with a clear margin")
    p.add_argument("--sandbox", choices=SANDBOXES,
                   help="where reproduction scripts and tests run to verify the patches (default auto; "
                        "none: unsandboxed; off: do not verify)")
    p.add_argument("--test-env", choices=TEST_ENVS,
                   help="the Python the tests run with: this one (host, default), a virtual environment "
                        "built from the repository once per commit (build), or build falling back to host (auto)")


def _issue_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", default=".", help="the git repository (default: the current folder)")
    p.add_argument("--issue", required=True, help="a file holding the issue's text, or - for standard input")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="swe-reasoner", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("solve", help="write a patch that fixes an issue")
    _issue_flags(p)
    _model_flags(p)
    _solve_flags(p, "rollouts: candidates sampled at each stage (default 1; see docs/search.md)")
    p.add_argument("--out", help="write the patch here instead of standard output")
    p.add_argument("--trajectory", help="append the trajectory (JSONL) here")

    p = sub.add_parser("locate", help="list the files most likely to need the fix")
    _issue_flags(p)
    _model_flags(p)
    p.add_argument("--top", type=int, default=5, help="how many files (default 5)")
    p.add_argument("--functions", action="store_true", help="also list suspicious classes and functions")

    p = sub.add_parser("verify", help="check a patch in a sandbox: reproduction and regression tests")
    from .verify import add_arguments as verify_arguments  # argparse lines only: cheap

    verify_arguments(p)

    p = sub.add_parser("eval", help="solve SWE-bench-format instances; write predictions for the harness")
    p.add_argument("--instances", required=True, help="JSONL: instance_id, repo, base_commit, problem_statement[, patch, ...]")
    p.add_argument("--repos", required=True, help="a folder with one git clone per repository, as OWNER__NAME")
    p.add_argument("--out", required=True, help="predictions JSONL (appended; a rerun resumes)")
    _solve_flags(p, "rollouts per instance: candidates sampled at each stage (default 1)")
    p.add_argument("--workers", type=int, default=1,
                   help="instances solved at a time (default 1); an in-process model answers one at a time")
    p.add_argument("--trajectory", help="append the trajectories (JSONL) here")
    p.add_argument("--model-name", help="model_name_or_path in the predictions (default: the model's name)")
    _model_flags(p)

    p = sub.add_parser("quantize", add_help=False, prefix_chars="\0",
                       help="HF checkpoints to GGUF, quantize, check agreement (swe-reasoner quantize --help)")
    p.add_argument("args", nargs=argparse.REMAINDER)

    p = sub.add_parser("serve", help="run the language server (LSP over stdio)")
    p.add_argument("--tcp", metavar="HOST:PORT", help="listen on TCP instead of stdio (for debugging)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "solve":
            return _solve(args)
        if args.command == "verify":
            from .verify import cli_main

            return cli_main(args)
        if args.command == "quantize":
            from ..quantize.cli import main as quantize_main

            return quantize_main(args.args)
        if args.command == "eval":
            return _eval(args)
        if args.command == "serve":
            from ..server.server import serve

            serve(args.tcp)
            return 0
        return _locate(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except Cancelled:
        print("cancelled", file=sys.stderr)
        return 130
    except SweReasonerError as exc:
        print(f"swe-reasoner: {exc}", file=sys.stderr)
        return 2


def read_input(spec: str, what: str) -> str:
    """The text of the file `spec`, or of standard input for "-"."""
    if spec == "-":
        return sys.stdin.read()
    try:
        return Path(spec).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise SweReasonerError(f"cannot read the {what} from {spec}: {exc.strerror}") from None


def _open(args: argparse.Namespace):
    """The repository, the issue's text and the settings a subcommand works with."""
    from .config import load_settings
    from .repo import Repo

    repo = Repo.open(args.repo)
    issue = read_input(args.issue, "issue")
    if not issue.strip():
        raise SweReasonerError("the issue text is empty")
    return repo, issue, load_settings(repo.root, _overrides(args))


def _overrides(args: argparse.Namespace) -> dict:
    """The settings the subcommand's flags give (None: not given)."""
    return {key: getattr(args, key, None) for key in ("model", "api_base", "api_model", "n_ctx", "n_gpu_layers",
                                                      "max_tokens", "budget", "strategy", "adaptive", "sandbox",
                                                      "test_env")}


def _solve(args: argparse.Namespace) -> int:
    from .config import load_model, load_sandbox, load_test_env, solve_options
    from .pipeline import solve
    from .progress import CancelToken

    repo, issue, settings = _open(args)
    trajectory = Path(args.trajectory) if args.trajectory else settings.trajectory_file()
    sandbox, note = load_sandbox(settings)
    environment, env_note = load_test_env(settings, repo, sandbox)
    if env_note:
        print(env_note, file=sys.stderr)
    model = load_model(settings)
    cancel = CancelToken()
    try:
        result = solve(repo, issue, model, solve_options(
            settings, trajectory_path=trajectory, sandbox=sandbox, verification_note=note, environment=environment),
            progress=_TerminalProgress(), cancel=cancel)
    except KeyboardInterrupt:
        cancel.cancel()
        raise
    finally:
        model.close()
    print(f"trajectory: {trajectory}", file=sys.stderr)
    print(_spending(result.trajectory), file=sys.stderr)
    if not result.patches:
        reasons = "; ".join(c.error.splitlines()[0] for c in result.failed if c.error) or result.trajectory.error
        print(f"no patch was produced ({reasons or 'no candidate'})", file=sys.stderr)
        return 1
    best = result.patches[0]
    if best.verification is not None:
        print(("verified" if best.verification["verified"] else "NOT verified") + ": "
              + best.verification["reason"], file=sys.stderr)
    elif note:
        print(note, file=sys.stderr)
    if args.out:
        Path(args.out).write_text(result.best, encoding="utf-8")
        print(f"patch written to {args.out} ({len(result.patches)} distinct candidate(s))", file=sys.stderr)
    else:
        sys.stdout.write(result.best)
    return 0


def _spending(traj) -> str:
    """One line on what the solve cost: tokens, and the search's candidates per stage."""
    book, tokens = traj.budget, traj.tokens
    line = f"{tokens['prompt']} prompt tokens evaluated, {tokens['completion']} generated"
    if book:
        sampled = ", ".join(f"{n} {stage}" for stage, n in book["sampled"].items())
        line += f"; {book['strategy']} at budget {book['budget']}: {sampled} candidates"
        if book["saved"]["patch"]:
            line += f" ({book['saved']['patch']} patch samples saved by the adaptive stop)"
    return line


def _eval(args: argparse.Namespace) -> int:
    from .config import load_model, load_sandbox, load_settings, load_test_env, solve_options
    from .evaluation import evaluate
    from .harness import read_instances
    from .progress import CancelToken

    if args.workers < 1:
        raise SweReasonerError(f"--workers must be at least 1, not {args.workers}")
    instances = read_instances(args.instances)
    repos = Path(args.repos)
    if not repos.is_dir():
        raise SweReasonerError(f"--repos {repos} is not a folder")
    settings = load_settings(None, _overrides(args))  # the evaluated repositories' own files do not count
    sandbox, note = load_sandbox(settings)
    if note:
        print(note, file=sys.stderr)
    model = load_model(settings)
    cancel = CancelToken()
    try:
        summary = evaluate(instances, repos, Path(args.out), model, solve_options(
            settings, trajectory_path=Path(args.trajectory) if args.trajectory else None, sandbox=sandbox,
            verification_note=note),
            args.model_name or model.name, progress=lambda line: print(line, file=sys.stderr), cancel=cancel,
            workers=args.workers, environment_for=lambda repo: load_test_env(settings, repo, sandbox))
    except KeyboardInterrupt:
        cancel.cancel()
        raise
    finally:
        model.close()
    print(json.dumps(summary, indent=2))
    return 0


def _locate(args: argparse.Namespace) -> int:
    from .index import RepoIndex
    from .retrieval import Retriever, is_test_file, mentioned_identifiers

    repo, issue, settings = _open(args)
    index = RepoIndex.build(repo)
    retriever = Retriever(index)
    if settings.model or settings.api_base:
        files, locations = _locate_with_model(settings, repo, index, retriever, issue)
    else:
        files = [r.path for r in retriever.rank(issue, top=args.top)]
        names = set(mentioned_identifiers(issue))
        locations = [f"{s.file}: {s.qualname}" for f in files if not is_test_file(f)
                     for s in index.entry(f).symbols if s.name in names]
    for path in files[: args.top]:
        print(path)
    if args.functions:
        for loc in locations:
            print(loc)
    return 0 if files else 1


def _locate_with_model(settings, repo, index, retriever, issue):
    from .answers import Ask
    from .config import load_model
    from .progress import no_progress
    from .stages import Context
    from .stages.understand import understand
    from .tools import SearchTools
    from .trajectory import Trajectory

    model = load_model(settings)
    try:
        traj = Trajectory(issue, str(repo.root), repo.head(), model.name, {})
        ask = Ask(model, traj, max_tokens=settings.max_tokens)
        found = understand(Context(issue, index, retriever, SearchTools(index), ask, no_progress))[0]
    finally:
        model.close()
    return found.files, [loc.describe() for loc in found.locations]


class _TerminalProgress:
    """One live status line on a terminal; a line per change otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = ""

    def __call__(self, event) -> None:
        line = f"[{event.fraction * 100:3.0f}%] {event.describe()}" + (f" · {event.tokens} tokens" if event.tokens else "")
        if self.tty:
            sys.stderr.write("\r\033[K" + line[:200] + ("\n" if event.stage == "done" else ""))
            sys.stderr.flush()
        elif line != self.last:
            print(line, file=sys.stderr)
        self.last = line


if __name__ == "__main__":
    sys.exit(main())
