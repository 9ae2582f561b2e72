"""Helpers for the local runtime tests: zips of test functions, reading a function's log group."""
from __future__ import annotations

import io
import zipfile


def zip_of(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in sorted(files.items()):
            archive.writestr(name, text)
    return buffer.getvalue()


def log_messages(aws, function_name: str) -> list[str]:
    group = f"/aws/lambda/{function_name}"
    messages = []
    for stream in aws.logs.describe_log_streams(logGroupName=group)["logStreams"]:
        messages += [e["message"] for e in aws.logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])["events"]]
    return messages
