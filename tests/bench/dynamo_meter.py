"""Count DynamoDB calls, items read and capacity units through botocore's event hooks.

moto answers `ConsumedCapacity` with constants (0.5 or 1 per call, whatever the items), so capacity
is computed here from the request and the answer by DynamoDB's published rules instead: reads cost
one unit per 4 KB (half for eventually consistent reads), each item of a GetItem / BatchGetItem
rounded up on its own (a missing key still costs the minimum), a Query's items summed and rounded
once (filtered-out items are charged too, at the mean size of the items seen, since moto does not
return them); writes cost one unit per 1 KB per item, and once more per secondary index that holds
a copy (twice when an UpdateItem sets the index's key: the old index entry is deleted, a new one
written; a Put is counted once per index, which is exact for new items and unchanged index keys).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

_READ_UNIT = 4096
_WRITE_UNIT = 1024


@dataclass
class Indexes:
    """A table's secondary indexes as the capacity rules need them: name → key attributes."""

    keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    keys_only: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, description: dict[str, Any]) -> Indexes:
        found = cls()
        for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            for index in description.get(kind, []):
                found.keys[index["IndexName"]] = tuple(k["AttributeName"] for k in index["KeySchema"])
                if index.get("Projection", {}).get("ProjectionType") == "KEYS_ONLY":
                    found.keys_only.add(index["IndexName"])
        return found


@dataclass
class DynamoMeter:
    """Per-operation call counts, items read and read/write capacity units."""

    indexes: dict[str, Indexes] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    items_read: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    _sizes: list[int] = field(default_factory=list)
    # Calls may come from several threads at once (the mirror sends batches in parallel).
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, client: Any) -> None:
        """Meter every call `client` makes from now on; learns the tables' indexes once."""
        for name in client.list_tables()["TableNames"]:
            self.indexes[name] = Indexes.of(client.describe_table(TableName=name)["Table"])
        client.meta.events.register("before-parameter-build.dynamodb", self._remember)
        client.meta.events.register("after-call.dynamodb", self._count)

    def reset(self) -> None:
        self.calls.clear()
        self.items_read = 0
        self.read_units = self.write_units = 0.0

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def summary(self, per: float = 1.0) -> str:
        """`BatchWriteItemx4, Queryx1` with counts divided by `per`."""
        return ", ".join(f"{op}x{_fmt(n / per)}" for op, n in sorted(self.calls.items()))

    # --- hooks ---

    def _remember(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["bench_params"] = dict(params)

    def _count(self, model: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if "Error" in parsed:
            return
        op = model.name
        params = context.get("bench_params", {})
        handler = getattr(self, f"_{op}", None)
        with self._lock:
            self.calls[op] += 1
            if handler is not None:
                handler(params, parsed)

    # --- reads ---

    def _GetItem(self, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        item = parsed.get("Item")
        self.items_read += 1 if item else 0
        self.read_units += _read_units(item_size(item) if item else 0, params.get("ConsistentRead", False))

    def _BatchGetItem(self, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        for table, request in params.get("RequestItems", {}).items():
            consistent = request.get("ConsistentRead", False)
            found = parsed.get("Responses", {}).get(table, [])
            unprocessed = len(parsed.get("UnprocessedKeys", {}).get(table, {}).get("Keys", []))
            missing = len(request.get("Keys", [])) - len(found) - unprocessed
            self.items_read += len(found)
            self.read_units += sum(_read_units(item_size(i), consistent) for i in found)
            self.read_units += missing * _read_units(0, consistent)

    def _Query(self, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        items = parsed.get("Items", [])
        sizes = [item_size(i) for i in items]
        self._sizes += sizes
        scanned = int(parsed.get("ScannedCount", len(items)))
        mean = sum(self._sizes) / len(self._sizes) if self._sizes else 0
        total = sum(sizes) + (scanned - len(items)) * mean
        self.items_read += scanned
        self.read_units += _read_units(int(total), params.get("ConsistentRead", False))

    # --- writes ---

    def _PutItem(self, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        self.write_units += self._write_units(params["TableName"], params["Item"])

    def _UpdateItem(self, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        item = parsed.get("Attributes") or params["Key"]
        changed = set(params.get("ExpressionAttributeNames", {}).values())
        changed |= set(_set_targets(params.get("UpdateExpression", "")))
        self.write_units += self._write_units(params["TableName"], item, changed_keys=changed)

    def _DeleteItem(self, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        self.write_units += _write_units(0)

    def _BatchWriteItem(self, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        for table, requests in params.get("RequestItems", {}).items():
            for request in requests:
                if "PutRequest" in request:
                    self.write_units += self._write_units(table, request["PutRequest"]["Item"])
                else:
                    # A delete costs the deleted item's size; mirror items are under 1 KB.
                    self.write_units += _write_units(0) * (1 + len(self._indexes_of(table)))

    def _write_units(self, table: str, item: dict[str, Any], changed_keys: set[str] | None = None) -> float:
        size = item_size(item)
        units = _write_units(size)
        indexes = self._indexes_of(table)
        for name, key in indexes.keys.items():
            if not all(k in item for k in key):
                continue  # sparse: the item is not in this index
            copy = item_size({k: item[k] for k in key}) if name in indexes.keys_only else size
            moved = changed_keys is not None and bool(changed_keys & set(key))
            units += _write_units(copy) * (2 if moved else 1)
        return units

    def _indexes_of(self, table: str) -> Indexes:
        return self.indexes.get(table, Indexes())


def item_size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB bills it: attribute names plus values (low-level JSON form)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: dict[str, Any]) -> int:
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(str(raw).encode())
    if kind == "N":
        digits = len(str(Decimal(str(raw))).lstrip("-").replace(".", "").lstrip("0")) or 1
        return math.ceil(digits / 2) + 1
    if kind == "B":
        return len(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(v) + 1 for k, v in raw.items())
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in raw)
    return sum(len(str(v).encode()) for v in raw)  # SS, NS, BS


def _read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / _READ_UNIT))
    return float(units) if consistent else units / 2


def _write_units(size: int) -> float:
    return float(max(1, math.ceil(size / _WRITE_UNIT)))


def _set_targets(expression: str) -> list[str]:
    body = expression.partition("SET ")[2]
    return [part.split("=")[0].strip() for part in body.split(",") if "=" in part]


def _fmt(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.2f}"
