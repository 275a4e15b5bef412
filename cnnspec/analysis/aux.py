"""Which layers belong to an auxiliary head (`aux(weight = 0.3) { ... }`).

An aux head is every node that an auxiliary output depends on and the main
output does not: GoogLeNet's `aux1.0` .. `aux1.fc2` hang off
`inception4a`, which itself stays on the main path. The summary marks these
rows and counts their parameters apart; the diagram frames them in a cluster
of their own. The IR records only each aux output's last node, so the head
is recovered from the wiring rather than from scopes: an unnamed
`aux(...) { flatten; linear(10) }` has no group of its own.
"""

from __future__ import annotations

from cnnspec.ir import Graph


def aux_heads(graph: Graph) -> dict[int, str]:
    """Node id -> the name of the aux output whose head it belongs to (main-path nodes are absent).

    A node two aux outputs share (a trunk common to both heads) goes to the
    first declared, so that every node is counted once.
    """
    if not graph.aux:
        return {}
    main = graph.ancestors(graph.output)
    owner: dict[int, str] = {}
    for aux in graph.aux:
        for nid in sorted(graph.ancestors(aux.node) - main):
            owner.setdefault(nid, aux.name)
    return owner
