"""AWS/SQS and AWS/Kinesis metrics the emulator can know, published as CloudWatch would publish them.

- SQS, per queue, gauges read from the queue: ApproximateNumberOfMessagesVisible, ...NotVisible,
  ...Delayed and ApproximateAgeOfOldestMessage; plus NumberOfMessagesSent counted as messages arrive.
- Kinesis, per stream: IncomingRecords and IncomingBytes, counted as records arrive.

CloudWatch publishes these every minute; here a background thread publishes every PUBLISH_SECONDS, and
`publish_now()` (POST /_patternwatch/metrics/flush) does it at once, so a reader sees current values.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict

from . import clock, telemetry

PUBLISH_SECONDS = 30.0
_lock = threading.Lock()
_counters: dict[tuple[str, str, str, str, tuple], float] = defaultdict(float)


def _count(account: str, region: str, namespace: str, name: str, dimensions: dict[str, str], value: float) -> None:
    with _lock:
        _counters[(account, region, namespace, name, tuple(sorted(dimensions.items())))] += value


def install() -> list[str]:
    from moto.kinesis.models import Stream
    from moto.sqs.models import SQSBackend

    original_put = Stream.put_record

    def put_record(self, partition_key, explicit_hash_key, data):
        result = original_put(self, partition_key, explicit_hash_key, data)
        size = len(data) if isinstance(data, (bytes, str)) else 0
        _count(self.account_id, self.region, "AWS/Kinesis", "IncomingRecords", {"StreamName": self.stream_name}, 1)
        _count(self.account_id, self.region, "AWS/Kinesis", "IncomingBytes", {"StreamName": self.stream_name}, size)
        return result

    Stream.put_record = put_record

    original_send = SQSBackend.send_message

    def send_message(self, queue_name, message_body, *args, **kwargs):
        message = original_send(self, queue_name, message_body, *args, **kwargs)
        _count(self.account_id, self.region_name, "AWS/SQS", "NumberOfMessagesSent", {"QueueName": queue_name}, 1)
        return message

    SQSBackend.send_message = send_message
    threading.Thread(target=_publish_forever, name="service-metrics", daemon=True).start()
    return ["metrics: AWS/SQS and AWS/Kinesis published every 30 s and on POST /_patternwatch/metrics/flush"]


def _publish_forever() -> None:
    while True:
        time.sleep(PUBLISH_SECONDS)
        try:
            publish_now()
        except Exception as error:  # a metrics hiccup must never stop the emulator
            print(f"metrics: publishing failed: {type(error).__name__}: {error}", flush=True)


def publish_now() -> int:
    """Publish the counters gathered since the last call and the current queue gauges; returns data points put."""
    with _lock:
        counters = dict(_counters)
        _counters.clear()
    points = 0
    for (account, region, namespace, name, dimensions), value in counters.items():
        unit = "Bytes" if name.endswith("Bytes") else "Count"
        telemetry.put_metrics(account, region, namespace, [telemetry.metric(name, value, unit, dict(dimensions))])
        points += 1
    return points + _publish_queue_gauges()


def _publish_queue_gauges() -> int:
    from moto.sqs.models import sqs_backends

    points = 0
    for account, regions in list(sqs_backends.items()):
        for region, backend in list(regions.items()):
            data = []
            for queue in list(backend.queues.values()):
                dimensions = {"QueueName": queue.name}
                messages = list(queue._messages)
                oldest = min((m.sent_timestamp for m in messages), default=None)
                age = max(0.0, clock.now() - oldest / 1000.0) if oldest else 0.0
                data += [
                    telemetry.metric("ApproximateNumberOfMessagesVisible", queue.approximate_number_of_messages, "Count", dimensions),
                    telemetry.metric("ApproximateNumberOfMessagesNotVisible", queue.approximate_number_of_messages_not_visible, "Count", dimensions),
                    telemetry.metric("ApproximateNumberOfMessagesDelayed", queue.approximate_number_of_messages_delayed, "Count", dimensions),
                    telemetry.metric("ApproximateAgeOfOldestMessage", age, "Seconds", dimensions),
                ]
            telemetry.put_metrics(account, region, "AWS/SQS", data)
            points += len(data)
    return points
