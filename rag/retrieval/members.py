"""Which embedded nodes a final node is made of: a sentence window's sentences, a merged parent's leaves."""

from __future__ import annotations

from typing import Any

MAX_WINDOW_STEPS = 16  # a window never spans more sentences than this on either side


def members(node: Any, docstore: Any) -> list[str]:
    """The ids of the embedded nodes whose text makes up ``node``'s final text (KeyError if one is gone)."""
    from llama_index.core.schema import NodeRelationship

    window = node.metadata.get("window")
    if window is not None:  # a sentence-window node: its neighbours inside the window
        return [*reversed(_neighbours(node, NodeRelationship.PREVIOUS, window, docstore)), node.node_id,
                *_neighbours(node, NodeRelationship.NEXT, window, docstore)]
    children = node.relationships.get(NodeRelationship.CHILD)
    if not children:
        return [node.node_id]
    leaves: list[str] = []
    for child in children:  # a merged parent: every leaf under it
        leaves.extend(members(_node(child.node_id, docstore), docstore))
    return leaves


def _neighbours(node: Any, direction: Any, window: str, docstore: Any) -> list[str]:
    found, current = [], node
    for _ in range(MAX_WINDOW_STEPS):
        link = current.relationships.get(direction)
        if link is None:
            break
        current = _node(link.node_id, docstore)
        if current.metadata.get("original_text", "\0") not in window:
            break
        found.append(current.node_id)
    return found


def _node(node_id: str, docstore: Any) -> Any:
    try:
        return docstore.get_node(node_id)
    except (KeyError, ValueError):
        raise KeyError(node_id) from None
