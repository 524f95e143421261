"""Ranking patch candidates: clusters of the same change, and each strategy's order.

Candidates that make the same change (whitespace aside) form a cluster; its
size is the candidate's votes. agent/search.py says which strategy ranks how.
"""

from __future__ import annotations

from .stages.patch import PatchCandidate


def change_key(cand: PatchCandidate) -> tuple:
    """What a patch does to the files, ignoring trailing spaces and blank lines."""
    return tuple(sorted((path, tuple(line.rstrip() for line in new.splitlines() if line.strip()))
                        for path, (_old, new) in cand.texts.items()))


def vote(candidates: list[PatchCandidate]) -> list[PatchCandidate]:
    """One patch per distinct change, the most often written first (ties: the earlier first).

    Each kept candidate's `scores["votes"]` is the size of its cluster.
    """
    clusters: dict[tuple, list[PatchCandidate]] = {}
    for cand in candidates:
        if cand.diff:
            clusters.setdefault(change_key(cand), []).append(cand)
    ranked = sorted(clusters.values(), key=len, reverse=True)  # sorted() is stable
    for cluster in ranked:
        cluster[0].scores["votes"] = len(cluster)
    return [cluster[0] for cluster in ranked]


def distinct(candidates: list[PatchCandidate]) -> list[PatchCandidate]:
    """One candidate per distinct change (with its votes), in sampling order."""
    return sorted(vote(candidates), key=lambda c: c.candidate)


def rank(strategy: str, candidates: list[PatchCandidate]) -> list[PatchCandidate]:
    """Distinct candidates, best first:
    exec: verified first, then in sampling order;
    orm-exec: verified first, the verified by the ORM, then sampling order;
    voting: the most votes first (no execution);
    dev-search: verified first by the ORM, the others by the PRM."""
    def key(c: PatchCandidate) -> tuple:
        verified = c.scores.get("verified", 0.0)
        if strategy == "voting":
            return (-c.scores.get("votes", 1), c.candidate)
        if strategy == "exec":
            return (-verified, c.candidate)
        if strategy == "orm-exec":
            return (-verified, -c.scores.get("orm", 0.0) if verified else 0.0, c.candidate)
        return (-verified, -c.scores.get("orm" if verified else "prm", 0.0), c.candidate)

    return sorted(candidates, key=key)
