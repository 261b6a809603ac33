#!/usr/bin/env python3
"""Reads every message of one Kafka topic from the beginning with confluent-kafka (an independent
consumer: its own bundled librdkafka, no consumer group) and prints them as one JSON object on stdout: {"partitions": N, "records": [...]}.

Usage: kafka_consume.py BROKERS TOPIC

Each record: {"partition", "offset", "key", "value", "headers": {name: value}} with key, value and header
values as UTF-8 text (or null). Exits 2 when the topic does not exist (yet), after a bounded wait.
"""
import json
import os
import sys

from confluent_kafka import Consumer, KafkaError, TopicPartition, OFFSET_BEGINNING


def text(b):
    return None if b is None else b.decode("utf-8", "replace")


def main():
    brokers, topic = sys.argv[1], sys.argv[2]
    c = Consumer({
        "bootstrap.servers": brokers,
        "group.id": "tributary-test-reader",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    })
    meta = c.list_topics(topic, timeout=10)
    t = meta.topics.get(topic)
    if t is None or t.error is not None or not t.partitions:
        print(f"topic {topic!r} not found: {t.error if t else 'absent'}", file=sys.stderr)
        os._exit(2)
    parts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(t.partitions)]
    c.assign(parts)
    pending = {p.partition for p in parts}
    out = []
    idle = 0
    while pending and idle < 100:
        m = c.poll(0.2)
        if m is None:
            idle += 1
            continue
        idle = 0
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                pending.discard(m.partition())
                continue
            print(f"consume error: {m.error()}", file=sys.stderr)
            os._exit(1)
        out.append({
            "partition": m.partition(),
            "offset": m.offset(),
            "key": text(m.key()),
            "value": text(m.value()),
            "headers": {k: text(v) for k, v in (m.headers() or [])},
        })
    if pending:
        print(f"partitions {sorted(pending)} of {topic!r} never reached their end", file=sys.stderr)
        os._exit(1)
    json.dump({"partitions": len(parts), "records": out}, sys.stdout)
    sys.stdout.flush()
    c.close()
    os._exit(0)


if __name__ == "__main__":
    main()
