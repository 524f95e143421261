"""Ranking patch candidates: by execution (verified first), then by votes.

Candidates that make the same change (whitespace aside) form a cluster, and the
largest cluster's patch comes first. The outcome reward model joins here when
it arrives.
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


def by_execution(candidates: list[PatchCandidate]) -> list[PatchCandidate]:
    """Verified candidates first; the order is otherwise kept (stable)."""
    return sorted(candidates, key=lambda c: -c.scores.get("verified", 0.0))
