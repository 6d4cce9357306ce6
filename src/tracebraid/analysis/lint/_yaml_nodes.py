"""Reading a YAML file node by node, so every error names the file and line it is about.

``yaml.compose`` keeps each node's position (``start_mark``); ``NodeReader`` checks
shapes (a mapping with known keys, a single value, a list) and turns what is wrong
into a ``ConfigurationError`` that starts with ``file:line:``.

Example::

    >>> reader = NodeReader("conv.yaml")
    >>> root = reader.compose("a: 1\\nb: [2]\\n")
    >>> sorted(reader.mapping(root, "the file", ("a", "b")))
    ['a', 'b']
    >>> reader.mapping(root, "the file", ("a",))
    Traceback (most recent call last):
    ...
    tracebraid.errors.ConfigurationError: conv.yaml:2: unknown key 'b' in the file; ...
"""

from __future__ import annotations

import yaml

from tracebraid.errors import ConfigurationError

__all__ = ["NodeReader"]


class NodeReader:
    """Checks the shape of composed YAML nodes; errors say ``source:line: what``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def compose(self, text: str) -> yaml.Node | None:
        """The document's root node (``None`` for an empty document)."""
        try:
            return yaml.compose(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = f":{mark.line + 1}" if mark is not None else ""
            problem = exc.problem or exc.context or "not valid YAML"
            raise ConfigurationError(f"{self.source}{line}: not valid YAML: {problem}") from None
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"{self.source}: not valid YAML: {exc}") from None

    def error(self, node: yaml.Node | None, message: str) -> ConfigurationError:
        """An error about ``node``, located at its line."""
        where = f"{self.source}:{node.start_mark.line + 1}" if node is not None else self.source
        return ConfigurationError(f"{where}: {message}")

    def mapping(
        self, node: yaml.Node, what: str, keys: tuple[str, ...] | None
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """Key -> (key node, value node); only ``keys`` allowed (any, when ``None``)."""
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{what} must be a mapping (key: value lines)")
        found: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = self.scalar(key_node, f"a key of {what}")
            if keys is not None and key not in keys:
                raise self.error(
                    key_node, f"unknown key {key!r} in {what}; expected one of {', '.join(keys)}"
                )
            if key in found:
                raise self.error(key_node, f"{key!r} appears twice in {what}")
            found[key] = (key_node, value_node)
        return found

    def scalar(self, node: yaml.Node, what: str) -> str:
        """A single value's text."""
        if not isinstance(node, yaml.ScalarNode) or node.tag.endswith(":null"):
            raise self.error(node, f"{what} must be a single value")
        return str(node.value)

    def scalars(self, node: yaml.Node, what: str) -> list[tuple[str, yaml.Node]]:
        """A list of single values (one value written without brackets counts as a list)."""
        if isinstance(node, yaml.ScalarNode) and not node.tag.endswith(":null"):
            return [(str(node.value), node)]
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, f"{what} must be a list")
        return [(self.scalar(item, f"an item of {what}"), item) for item in node.value]
