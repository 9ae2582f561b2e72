"""Cost tags on everything: an Aspect adds the environment's tags to every taggable resource.

The tags are written into each resource rather than into the provider's `default_tags`, so the
synthesized Terraform shows them, `terraform state show` shows them, and a unit test can prove that no
taggable resource was missed.
"""
from __future__ import annotations

from collections.abc import Mapping

import jsii
from cdktf import IAspect, TerraformResource
from constructs import IConstruct


@jsii.implements(IAspect)
class CostTags:
    def __init__(self, tags: Mapping[str, str]) -> None:
        self._tags = dict(tags)

    def visit(self, node: IConstruct) -> None:
        # Provider bindings expose a `tags` property exactly on the resource types that accept tags.
        if isinstance(node, TerraformResource) and hasattr(type(node), "tags_input"):
            own_tags = node.tags_input or {}
            node.tags = {**self._tags, **own_tags}
