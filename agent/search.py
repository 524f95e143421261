"""Test-time search: a budget B of rollouts spent across the stages, chosen by a strategy.

Every strategy samples B candidates at each of the three decision points
(understand, localize, patch), so that strategies compare at equal budget:
- exec, orm-exec, voting: B independent rollouts (each reading localized once,
  each localization patched once);
- dev-search: beams. After understand and after localize the PRM scores the
  distinct candidates and keeps the top k = max(1, isqrt(B)); each kept one is
  continued with an even share of the next stage's B samples (B = 4: 4 readings,
  2 kept, 2 localizations each, 2 kept, 2 patches each). The patches are scored
  by the PRM too, which orders the unverified ones.
Then the patches are deduplicated (same change, whitespace aside), verified
(all strategies but voting), and ranked:
- exec: verified first, then in sampling order;
- orm-exec: verified first, then by the ORM;
- voting: the largest cluster of identical changes first, no execution;
- dev-search: verified first by the ORM, the rest by the PRM.
Adaptive compute: patches are sampled one parent at a time and verified as they
come; sampling stops once a verified patch is better than every other by the
ORM with probability ADAPTIVE_CONFIDENCE (exec: once one verifies). What was
not sampled is reported as saved. docs/search.md explains the choices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .ranking import distinct, rank
from .rewards import OutcomeReward, ProcessReward, beats
from .repo import Repo, Scratch
from .stages import Context, Location
from .stages.localize import localize
from .stages.patch import PatchCandidate, code_context, patch, revise
from .stages.reproduce import reproduce
from .stages.understand import Understanding, understand
from .verify import VerifyOptions, verify_patch

STAGES = ("understand", "localize", "patch")
FALLBACK_FILES = 2  # no precise location from the model: patch the files it read, best first
ADAPTIVE_CONFIDENCE = 0.75  # P(the best verified patch beats each other one) that stops sampling early
PRM_FRACTION = {"understand": 0.18, "localize": 0.5, "patch": 0.85}  # progress shown while the PRM scores
REVISIONS = 1  # rounds in which candidates that failed verification are rewritten, when none passed
FEEDBACK_CHARS = 4000  # of a failed verification's evidence, shown to the model


@dataclass(frozen=True)
class Plan:
    budget: int
    strategy: str

    @property
    def keep(self) -> int:
        """Candidates kept after a stage: the beam width."""
        return max(1, math.isqrt(self.budget)) if self.strategy == "dev-search" else self.budget

    @property
    def verifies(self) -> bool:
        return self.strategy != "voting"

    @property
    def uses_orm(self) -> bool:
        return self.strategy in ("orm-exec", "dev-search")

    def shares(self, parents: int) -> list[int]:
        """The next stage's B samples spread over `parents` kept candidates, the first ones
        taking the remainder."""
        base, extra = divmod(self.budget, parents)
        return [base + (i < extra) for i in range(parents)]


@dataclass
class Node:
    """One candidate of one stage, for the record: what the PRM saw and whether it was kept."""

    id: str  # "u2", "u2.l1", "u2.l1.p3"
    stage: str
    candidate: int  # its number within the stage: the `candidate` of its steps in the trajectory
    summary: str
    value: object = None  # the Understanding, the locations, the PatchCandidate
    prm: float | None = None
    kept: bool = True

    def to_dict(self) -> dict:
        return {"id": self.id, "stage": self.stage, "candidate": self.candidate, "parent": self.id.rpartition(".")[0] or None,
                "summary": self.summary, "prm": self.prm, "kept": self.kept}


@dataclass
class Outcome:
    patches: list[PatchCandidate]  # distinct, best first
    failed: list[PatchCandidate]  # candidates that produced no diff
    understanding: Understanding | None  # the reading and locations the best patch came from
    locations: list[Location]
    nodes: list[Node] = field(default_factory=list)
    budget: dict = field(default_factory=dict)  # what was planned, sampled and saved
    reproduction: dict = field(default_factory=dict)


class Search:
    """One solve's search. `sandbox` None: patches are not verified (ranked as if none passed)."""

    def __init__(self, ctx: Context, repo: Repo, options, prm: ProcessReward, orm: OutcomeReward):
        self.ctx, self.repo, self.options = ctx, repo, options
        self.plan = Plan(options.budget, options.strategy)
        self.prm, self.orm = prm, orm
        self.temperature = options.temperature if options.budget > 1 else 0.0
        self.nodes: list[Node] = []
        self.sampled = dict.fromkeys(STAGES, 0)
        self.counts = {"prm_calls": 0, "orm_calls": 0, "verifications": 0, "revisions": 0}
        self.reproduction: dict = {}  # the reproduction script ("script", None if none reproduced) and its tries
        self.repro_locations: list[Location] = []  # the code the reproduction script is written against
        self.evidence: dict[int, str] = {}  # id(candidate) -> its failed verification, for a revision

    @property
    def verifying(self) -> bool:
        return self.plan.verifies and self.options.sandbox is not None

    def run(self) -> Outcome:
        readings = self._understand()
        localized = self._localize(readings)
        outcome = Outcome([], [], None, [], self.nodes)
        if not any(node.value for node in localized):
            outcome.understanding = readings[0].value if readings else None
            outcome.budget = self._budget(stopped=False)
            return outcome
        parents = [n for n in localized if n.value]
        self.repro_locations = parents[0].value
        candidates, stopped = self._patch(parents)
        patches = distinct(candidates)
        if self.verifying:
            self._verify(patches)
            patches += self._revise(patches)
        self._score_outcomes(patches)
        outcome.patches = rank(self.plan.strategy, patches)
        outcome.failed = [c for c in candidates if not c.diff]
        lineage = (outcome.patches[0].node if outcome.patches else parents[0].id).split(".")
        outcome.understanding = self._value(lineage[0])
        outcome.locations = self._value(".".join(lineage[:2]))
        outcome.budget = self._budget(stopped)
        outcome.reproduction = self.reproduction
        return outcome

    # -- the stages --------------------------------------------------------------

    def _understand(self) -> list[Node]:
        found = understand(self.ctx, n=self.plan.budget, temperature=self.temperature)
        self.sampled["understand"] += len(found)
        nodes = [self._node(f"u{i}", "understand", i, _describe_reading(u), u) for i, u in enumerate(found, start=1)]
        return self._select(nodes)

    def _localize(self, readings: list[Node]) -> list[Node]:
        nodes = []
        for parent, share in zip(readings, self.plan.shares(len(readings))):
            for j in range(1, share + 1):
                found: Understanding = parent.value
                located = localize(self.ctx, found, len(nodes) + 1, self.plan.budget, self.temperature)
                self.sampled["localize"] += 1
                locations = located.locations or [Location(f) for f in found.files[:FALLBACK_FILES]]
                nodes.append(self._node(f"{parent.id}.l{j}", "localize", len(nodes) + 1,
                                        _describe_locations(locations), locations))
        return self._select(nodes)

    def _patch(self, parents: list[Node]) -> tuple[list[PatchCandidate], bool]:
        """Patch candidates, one parent's share at a time; True if the adaptive stop ended it early."""
        out: list[PatchCandidate] = []
        with Scratch(self.repo) as scratch:
            for parent, share in zip(parents, self.plan.shares(len(parents))):
                wave = patch(self.ctx, scratch, parent.value, n=share, temperature=self.temperature,
                             first=len(out) + 1, total=self.plan.budget)
                self.sampled["patch"] += len(wave)
                for j, cand in enumerate(wave, start=1):
                    cand.node = f"{parent.id}.p{j}"
                    node = self._node(cand.node, "patch", cand.candidate, cand.diff or f"(no patch: {cand.error})", cand)
                    if cand.diff and self.plan.strategy == "dev-search" and self.plan.budget > 1:
                        cand.scores["prm"] = node.prm = self._prm("patch", cand.diff)
                out += wave
                if self.options.adaptive and self.verifying and self._confident(out):
                    return out, len(out) < self.plan.budget
        return out, False

    # -- choosing ------------------------------------------------------------------

    def _select(self, nodes: list[Node]) -> list[Node]:
        """Dev-search keeps the PRM's top k distinct candidates; the others keep every rollout."""
        if self.plan.strategy != "dev-search":
            return nodes
        unique: dict[str, Node] = {}
        for node in nodes:
            if node.summary in unique:
                node.kept = False
            else:
                unique[node.summary] = node
        if len(unique) <= self.plan.keep:
            return list(unique.values())
        for node in unique.values():
            node.prm = self._prm(node.stage, node.summary)
        kept = sorted(unique.values(), key=lambda n: -n.prm)[: self.plan.keep]  # stable: ties keep order
        for node in unique.values():
            node.kept = node in kept
        return [n for n in nodes if n in kept]

    def _prm(self, stage: str, output: str) -> float:
        self.ctx.report(stage, PRM_FRACTION[stage], "scoring with the PRM")
        self.counts["prm_calls"] += 1
        return self.prm.score(self.ctx.issue, stage, output)

    def _orm(self, cand: PatchCandidate) -> float:
        if "orm" not in cand.scores:
            self.counts["orm_calls"] += 1
            cand.scores["orm"] = self.orm.score(self.ctx.issue, cand.diff)
        return cand.scores["orm"]

    def _score_outcomes(self, distinct: list[PatchCandidate]) -> None:
        """The ORM ranks the verified patches, when there is a choice to make."""
        verified = [c for c in distinct if c.scores.get("verified")]
        if self.plan.uses_orm and len(verified) > 1:
            for cand in verified:
                self._orm(cand)

    def _confident(self, sampled: list[PatchCandidate]) -> bool:
        """Verify what came so far; True once a verified patch clearly beats the rest."""
        patches = distinct(sampled)
        self._verify(patches)
        verified = [c for c in patches if c.scores.get("verified")]
        if not verified:
            return False
        if not self.plan.uses_orm:
            return True
        best = max(verified, key=self._orm)
        return all(beats(self._orm(best), self._orm(c)) >= ADAPTIVE_CONFIDENCE for c in patches if c is not best)

    # -- verification ------------------------------------------------------------------

    def _verify(self, candidates: list[PatchCandidate]) -> None:
        """Run each not yet verified candidate's checks; the reproduction script is written once."""
        todo = [c for c in candidates if c.verification is None]
        if not todo:
            return
        if not self.reproduction:
            found = reproduce(self.ctx, self.repo, self.options.sandbox, code_context(self.ctx, self.repro_locations),
                              timeout=self.options.verify_timeout, environment=self.options.environment)
            self.reproduction = found.to_dict()
        for i, cand in enumerate(todo, start=1):
            self.ctx.report("verify", 0.9 + 0.08 * (i - 1) / len(todo), "running the tests", i, len(todo))
            verdict = verify_patch(self.repo, cand.diff, self.options.sandbox, self.reproduction["script"],
                                   VerifyOptions(timeout=self.options.verify_timeout, cancel=self.ctx.ask.cancel,
                                                 environment=self.options.environment))
            self.counts["verifications"] += 1
            cand.verification = verdict.to_dict()
            cand.scores["verified"] = 1.0 if verdict.verified else 0.0
            self.evidence[id(cand)] = verdict.describe(output_lines=20)[-FEEDBACK_CHARS:]

    def _revise(self, candidates: list[PatchCandidate]) -> list[PatchCandidate]:
        """When none passed, each failed candidate is rewritten with its verification's evidence."""
        revised: list[PatchCandidate] = []
        for _ in range(REVISIONS):
            failed = [c for c in candidates + revised
                      if c.verification and not c.verification["verified"] and c.verification["status"] != "error"]
            if not failed or any(c.scores.get("verified") for c in candidates + revised):
                break
            new_round = []
            with Scratch(self.repo) as scratch:
                for i, cand in enumerate(failed, start=1):
                    self.ctx.report("verify", 0.98, "revising a failed patch", i, len(failed))
                    new = revise(self.ctx, scratch, cand, "Your patch failed verification.\n" + self.evidence[id(cand)])
                    self.counts["revisions"] += 1
                    if new.diff and new.diff not in {c.diff for c in candidates + revised + new_round}:
                        new.node = cand.node + ".r"
                        self._node(new.node, "revise", new.candidate, new.diff, new)
                        new_round.append(new)
            self._verify(new_round)
            revised += new_round
        return revised

    # -- bookkeeping ---------------------------------------------------------------------

    def _node(self, id: str, stage: str, candidate: int, summary: str, value: object) -> Node:
        node = Node(id, stage, candidate, summary, value)
        self.nodes.append(node)
        return node

    def _value(self, id: str):
        return next((n.value for n in self.nodes if n.id == id), None)

    def _budget(self, stopped: bool) -> dict:
        planned = dict.fromkeys(STAGES, self.plan.budget)
        return {"budget": self.plan.budget, "strategy": self.plan.strategy, "keep": self.plan.keep,
                "adaptive": self.options.adaptive, "planned": planned, "sampled": dict(self.sampled),
                "saved": {"patch": planned["patch"] - self.sampled["patch"] if stopped else 0}, **self.counts}


def _describe_reading(found: Understanding) -> str:
    return ("Files to read: " + ", ".join(found.files) + "\nSuspicious code:\n"
            + (_describe_locations(found.locations) if found.locations else "(none named)"))


def _describe_locations(locations: list[Location]) -> str:
    return "\n".join(f"- {loc.describe()}" + (f" ({loc.reason})" if loc.reason else "") for loc in locations)
