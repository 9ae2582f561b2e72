"""In-memory stand-ins for the low-level DynamoDB and EventBridge calls the stream consumer makes.

The consumer benchmark and the consumer's unit tests run the real `TradingPatternsTable` and
`PatternEvents` over these, without moto's per-request cost. They answer only what the consumer asks
(BatchWriteItem, Query on a partition newest or oldest first with a Limit, conditional PutItem,
UpdateItem, PutEvents) and count calls and DynamoDB read units as the emulator does
(tooling/local_aws/call_counts.py).
"""
from __future__ import annotations

import bisect
from typing import Any

from botocore.exceptions import ClientError

from tooling.local_aws.call_counts import read_units


class InMemoryDynamoDB:
    """One table's items by partition key -> sort key, with each partition's sort keys kept sorted."""

    def __init__(self) -> None:
        self.partitions: dict[str, dict[str, dict[str, Any]]] = {}
        self.sorted_keys: dict[str, list[str]] = {}
        self.calls: dict[str, int] = {}
        self.read_units = 0.0

    def _count(self, operation: str) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1

    def put(self, item: dict[str, Any]) -> None:
        pk, sk = item["PK"]["S"], item["SK"]["S"]
        partition = self.partitions.setdefault(pk, {})
        if sk not in partition:
            bisect.insort(self.sorted_keys.setdefault(pk, []), sk)
        partition[sk] = item

    def batch_write_item(self, RequestItems):
        self._count("batch_write_item")
        for requests in RequestItems.values():
            if len(requests) > 25:
                raise ValueError("BatchWriteItem takes at most 25 requests")
            for request in requests:
                self.put(request["PutRequest"]["Item"])
        return {"UnprocessedItems": {}}

    def query(self, TableName, KeyConditionExpression, ExpressionAttributeValues, ScanIndexForward=True, Limit=None,
              ConsistentRead=False, **_):
        # Only a whole partition is queried (the history Query); ProjectionExpression is ignored.
        if KeyConditionExpression != "#pk = :pk":
            raise NotImplementedError(f"in-memory query supports only '#pk = :pk', not {KeyConditionExpression!r}")
        self._count("query")
        pk = ExpressionAttributeValues[":pk"]["S"]
        keys = self.sorted_keys.get(pk, [])
        chosen = keys[::-1] if not ScanIndexForward else keys
        if Limit is not None:
            chosen = chosen[:Limit]
        items = [self.partitions[pk][sk] for sk in chosen]
        self.read_units += read_units(items, ConsistentRead)
        return {"Items": items}

    def put_item(self, TableName, Item, ConditionExpression=None, ExpressionAttributeValues=None, **_):
        self._count("put_item")
        existing = self.partitions.get(Item["PK"]["S"], {}).get(Item["SK"]["S"])
        # The consumer's only condition: attribute_not_exists(PK) OR alertState = :pending.
        if ConditionExpression and existing is not None:
            if existing.get("alertState", {}).get("S") != ExpressionAttributeValues[":pending"]["S"]:
                raise ClientError({"Error": {"Code": "ConditionalCheckFailedException", "Message": "exists"}}, "PutItem")
        self.put(Item)
        return {}

    def update_item(self, TableName, Key, ExpressionAttributeValues, **_):
        self._count("update_item")
        item = self.partitions[Key["PK"]["S"]][Key["SK"]["S"]]
        item["alertState"] = ExpressionAttributeValues[":emitted"]
        return {}


class InMemoryEvents:
    """PutEvents on the default bus: every entry accepted and kept."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def put_events(self, Entries):
        if len(Entries) > 10:
            raise ValueError("PutEvents takes at most 10 entries")
        self.messages.extend(entry["Detail"] for entry in Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(len(self.messages) + i)} for i in range(len(Entries))]}
