"""docs/architecture.md's one diagram shows every function, queue, topic, table and workflow the dev stacks create.

A resource is in the diagram when its logical name (the name without `-<name suffix>`, e.g. `AlertQueue-DLQ`)
appears there as a whole word. The diagram is Mermaid text, so a missing name is fixed by adding a node.
"""
from __future__ import annotations

import re
from pathlib import Path

from patternwatch_infra.naming import NAME_SUFFIX_REFERENCE
from patternwatch_infra.testing import resources

ARCHITECTURE_DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
# What the diagram must show: resource type -> (what to call it in a failure message, the attribute holding its name).
DRAWN_RESOURCES = {
    "aws_lambda_function": ("function", "function_name"),
    "aws_sqs_queue": ("queue", "name"),
    "aws_sns_topic": ("topic", "name"),
    "aws_dynamodb_table": ("table", "name"),
    "aws_sfn_state_machine": ("workflow", "name"),
}
# A name is letters and digits, joined by single `-` or `_`: `AlertQueue-DLQ` is one word, while the arrow in
# `AlertQueue-->AlertProcessor` ends the first name.
WORD = re.compile(r"[A-Za-z0-9]+(?:[-_][A-Za-z0-9]+)*")


def diagram_text() -> str:
    blocks = re.findall(r"^```mermaid\n(.*?)^```", ARCHITECTURE_DOC.read_text(), flags=re.S | re.M)
    assert len(blocks) == 1, f"{ARCHITECTURE_DOC.name} must hold exactly one ```mermaid diagram, found {len(blocks)}"
    return blocks[0]


def logical_names(document: dict) -> dict[str, set[str]]:
    """The stack's drawn resources by kind, each by its name without the name suffix."""
    names: dict[str, set[str]] = {}
    for resource_type, (kind, attribute) in DRAWN_RESOURCES.items():
        for block in resources(document, resource_type).values():
            name = block[attribute]
            assert name.endswith(f"-{NAME_SUFFIX_REFERENCE}"), f"{resource_type} {name!r} does not end in the name suffix"
            names.setdefault(kind, set()).add(name.removesuffix(f"-{NAME_SUFFIX_REFERENCE}"))
    return names


def test_the_doc_holds_one_diagram_with_both_paths():
    text = diagram_text()
    assert text.lstrip().startswith("flowchart")
    for path in ("data path", "control path"):
        assert path in text.lower(), f"the diagram has no subgraph for the {path}"


def test_every_function_queue_topic_table_and_workflow_of_the_dev_stack_is_in_the_diagram(dev):
    drawn = set(WORD.findall(diagram_text()))
    in_stack = logical_names(dev)
    assert set(in_stack) == {kind for kind, _ in DRAWN_RESOURCES.values()}, "the dev stack lost a whole kind of resource"
    missing = {kind: sorted(names - drawn) for kind, names in sorted(in_stack.items()) if names - drawn}
    assert not missing, (
        f"docs/architecture.md: add to the diagram (as a node named by its logical name) "
        + "; ".join(f"{kind}s {', '.join(names)}" for kind, names in missing.items())
    )


def test_the_power_tuner_s_functions_and_workflow_are_in_the_diagram(dev_tuner):
    """The tuner is a stack of its own; the one diagram shows it too."""
    drawn = set(WORD.findall(diagram_text()))
    in_stack = logical_names(dev_tuner)
    assert set(in_stack) == {"function", "workflow"}
    missing = sorted(name for names in in_stack.values() for name in names - drawn)
    assert not missing, f"docs/architecture.md: add the power tuner's {', '.join(missing)} to the diagram"


def test_a_name_only_counts_as_a_whole_word():
    assert WORD.findall("AlertQueue-->AlertProcessor") == ["AlertQueue", "AlertProcessor"]
    assert WORD.findall('q1[/"SQS AlertQueue-DLQ"/]') == ["q1", "SQS", "AlertQueue-DLQ"]
    assert "AlertQueue" not in WORD.findall("AlertQueue-DLQ")
