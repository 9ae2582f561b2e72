"""APPROVERS as the functions read it: what approvers_json writes parses back, anything else is a clear error."""
from __future__ import annotations

import json
import re

import pytest
from patternwatch_shared.approvers import MAX_APPROVERS, Approver, InvalidApprovers, approvers_json, parse_approvers

ADA = Approver("ada", "Ada Lovelace")


def test_what_the_infrastructure_writes_parses_back_by_id():
    assert parse_approvers(approvers_json([ADA, Approver("grace", "Grace Hopper")])) == {"ada": ADA, "grace": Approver("grace", "Grace Hopper")}


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("not json", "APPROVERS is not JSON"),
        ('{"id": "ada"}', f"APPROVERS must be a list of at most {MAX_APPROVERS} approvers"),
        (json.dumps([{"id": f"a{i}", "name": "A"} for i in range(MAX_APPROVERS + 1)]), "at most 20 approvers"),
        ('[{"id": "ada"}]', 'each approver must be {"id": ..., "name": ...}'),
        ('["ada"]', 'each approver must be {"id": ..., "name": ...}'),
        ('[{"id": "Ada", "name": "Ada"}]', "approver id 'Ada' does not match"),
        ('[{"id": 7, "name": "Ada"}]', "approver id 7 does not match"),
        ('[{"id": "ada", "name": " "}]', "approver ada: name must be 1-64 characters"),
        (json.dumps([{"id": "ada", "name": "A" * 65}]), "approver ada: name must be 1-64 characters"),
        ('[{"id": "ada", "name": "Ada"}, {"id": "ada", "name": "Ada L."}]', "approver ada is listed twice"),
    ],
)
def test_anything_else_is_refused_with_the_reason(raw, error):
    with pytest.raises(InvalidApprovers, match=re.escape(error)):
        parse_approvers(raw)
