"""The people who may approve CRITICAL alerts, as the functions receive them (env var APPROVERS).

envs/*.json names each environment's approvers (id, display name, e-mail; patternwatch_infra.config
validates them). The infrastructure hands the functions the ids and names only, encoded by
`approvers_json`, and gives each e-mail address its own SNS subscription. A link is bound to one
approver id; a link whose approver is no longer in this list is refused.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

# Short, lowercase, no spaces: it is an SNS message attribute value and part of Terraform addresses.
APPROVER_ID_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
MAX_APPROVER_NAME_CHARS = 64
# Lambda's environment holds at most 4 KB in all; 20 approvers with 64-character names fit with room to spare.
MAX_APPROVERS = 20


class InvalidApprovers(ValueError):
    """APPROVERS is malformed: a deployment problem, not a bad request."""


@dataclass(frozen=True)
class Approver:
    id: str
    name: str


def approvers_json(approvers: Iterable[Approver]) -> str:
    return json.dumps([{"id": a.id, "name": a.name} for a in approvers], separators=(",", ":"))


def parse_approvers(raw: str) -> dict[str, Approver]:
    """The approvers by id, from `approvers_json`'s text; raises InvalidApprovers on anything else."""
    try:
        entries = json.loads(raw)
    except ValueError:
        raise InvalidApprovers("APPROVERS is not JSON") from None
    if not isinstance(entries, list) or len(entries) > MAX_APPROVERS:
        raise InvalidApprovers(f"APPROVERS must be a list of at most {MAX_APPROVERS} approvers")
    approvers: dict[str, Approver] = {}
    for entry in entries:
        if not isinstance(entry, dict) or set(entry) != {"id", "name"}:
            raise InvalidApprovers('each approver must be {"id": ..., "name": ...}')
        approver_id, name = entry["id"], entry["name"]
        if not isinstance(approver_id, str) or not APPROVER_ID_PATTERN.fullmatch(approver_id):
            raise InvalidApprovers(f"approver id {approver_id!r} does not match {APPROVER_ID_PATTERN.pattern}")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_APPROVER_NAME_CHARS:
            raise InvalidApprovers(f"approver {approver_id}: name must be 1-{MAX_APPROVER_NAME_CHARS} characters")
        if approver_id in approvers:
            raise InvalidApprovers(f"approver {approver_id} is listed twice")
        approvers[approver_id] = Approver(approver_id, name)
    return approvers
