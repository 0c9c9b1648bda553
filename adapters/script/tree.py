"""SCRIPT elements as plain nested dicts: tag → list of children, a leaf is its text, attributes are ``@name``.

One pass over the lxml tree turns a document into this shape (namespaces dropped); every later lookup is a
dict access, which keeps a NewRx's whole mapping near 100 µs (bench/bench_script.py).
"""

from __future__ import annotations

from lxml import etree

Node = dict[str, list["Node | str"]]
"""An element with children or attributes; its own text, if any, is under ``#text``."""


_LOCAL_NAMES: dict[str, str] = {}
_LOCAL_NAMES_MAX = 4096
"""Tag → local name, memoized (slicing every namespaced tag costs a third of the conversion); bounded so
a document with endless distinct tags cannot grow it."""


def _local(tag: str) -> str:
    name = _LOCAL_NAMES.get(tag)
    if name is None:
        name = tag.rpartition("}")[2]
        if len(_LOCAL_NAMES) < _LOCAL_NAMES_MAX:
            _LOCAL_NAMES[tag] = name
    return name


def to_node(element: etree._Element) -> Node:
    """The element's children (and attributes) as a Node; leaves without attributes become their text."""
    node: Node = {}
    attrib = element.attrib
    if attrib:
        for name, attribute in attrib.items():
            node["@" + _local(name)] = [attribute]
        own = (element.text or "").strip()
        if own:
            node["#text"] = [own]
    for item in element:
        raw = item.tag
        tag = _LOCAL_NAMES.get(raw) or _local(raw)
        value: Node | str = to_node(item) if len(item) or item.attrib else (item.text or "")
        siblings = node.get(tag)
        if siblings is None:
            node[tag] = [value]
        else:
            siblings.append(value)
    return node


_STEPS: dict[str, list[str]] = {}


def _steps(path: str) -> list[str]:
    steps = _STEPS.get(path)
    if steps is None:
        steps = _STEPS[path] = path.split("/")
    return steps


def child(node: Node | None, path: str) -> Node | str | None:
    """The first element at ``path`` (``A/B/C``) under ``node``, or None."""
    if node is None:
        return None
    if "/" not in path:
        found = node.get(path)
        return found[0] if found else None
    current: Node | str | None = node
    for step in _steps(path):
        if not isinstance(current, dict):
            return None
        found = current.get(step)
        if not found:
            return None
        current = found[0]
    return current


def node_at(node: Node | None, path: str) -> Node | None:
    """The element at ``path`` as a Node (a bare leaf becomes an empty Node with its text), or None."""
    if node is None:
        return None
    if "/" in path:
        found = child(node, path)
        if found is None:
            return None
    else:
        values = node.get(path)
        if not values:
            return None
        found = values[0]
    if isinstance(found, str):
        return {"#text": [found]} if found.strip() else {}
    return found


def nodes(node: Node | None, tag: str) -> list[Node]:
    """Every ``tag`` child of ``node`` as a Node (leaves wrapped as in ``node_at``)."""
    if node is None:
        return []
    result: list[Node] = []
    for item in node.get(tag, ()):
        if isinstance(item, str):
            result.append({"#text": [item]} if item.strip() else {})
        else:
            result.append(item)
    return result


def own_text(value: Node | str | None) -> str:
    """Stripped text of a leaf, or a Node's ``#text``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    texts = value.get("#text")
    return texts[0].strip() if texts and isinstance(texts[0], str) else ""


def text(node: Node | None, path: str) -> str:
    """Stripped text at ``path`` under ``node`` ("" when absent or empty)."""
    if node is not None and "/" not in path:
        found = node.get(path)
        if not found:
            return ""
        value = found[0]
        return value.strip() if isinstance(value, str) else own_text(value)
    return own_text(child(node, path))


def elements(node: Node) -> list[tuple[str, Node | str]]:
    """Every element child of ``node`` (repeats included, grouped by tag), attributes and text skipped."""
    return [(tag, value) for tag, values in node.items() if tag[0] not in "@#" for value in values]
