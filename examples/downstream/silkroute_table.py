#!/usr/bin/env python3
"""A downstream consumer of silkroute.indicators: a live table of one region.

Reads the compacted indicators topic from the beginning with isolation.level=read_committed
(so a batch the service aborted never shows), keeps the latest record per key, and prints the
region's table whenever it changes: the latest period's total record (value, dollars, growth,
national rank), the shares of every breakdown, and the freight records of the given ports.
With --once it exits as soon as it has read every partition to its end.

    python3 silkroute_table.py --bootstrap 127.0.0.1:9092 --region XJ --once
"""

import argparse
import os
import sys
import time
import uuid
from decimal import Decimal
import json

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

BILLION = Decimal(1_000_000_000)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bootstrap",
                   default=os.environ.get("SILKROUTE__KAFKA__BOOTSTRAP_SERVERS", "localhost:9092"),
                   help="Kafka bootstrap servers (default: $SILKROUTE__KAFKA__BOOTSTRAP_SERVERS "
                        "or localhost:9092)")
    p.add_argument("--topic",
                   default=os.environ.get("SILKROUTE__TOPICS__INDICATORS", "silkroute.indicators"),
                   help="the indicators topic (default: silkroute.indicators)")
    p.add_argument("--region", default="XJ", help="region code (default: XJ)")
    p.add_argument("--port", action="append", dest="ports",
                   help="freight port to show; repeatable (default: khorgos)")
    p.add_argument("--once", action="store_true",
                   help="exit after reading the topic to its end, printing the table once")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="with --once: give up (exit 1) after this many seconds (default: 120)")
    args = p.parse_args(argv)
    args.ports = args.ports or ["khorgos"]
    return args


class Table:
    """The latest record of every key, and the view of one region computed from them."""

    def __init__(self, region, ports):
        self.region, self.ports = region, ports
        self.records = {}

    def apply(self, key, value):
        """Returns True when the record is new or changed."""
        record = None if value is None else json.loads(value)
        if record is None:
            changed = self.records.pop(key, None) is not None  # a tombstone deletes
        else:
            changed = self.records.get(key) != record
            self.records[key] = record
        return changed

    def latest_period(self):
        periods = [r["period"] for r in self.records.values()
                   if r.get("kind") == "trade" and r["region"] == self.region
                   and r["flow"] == "total" and r["dimension"] == "total"]
        return max(periods, default=None)

    def render(self):
        period = self.latest_period()
        if period is None:
            return f"{self.region}: no total trade record yet", None
        total = self.records.get(f"trade/{self.region}/total/total/-/{period}")
        lines = [headline(self.region, period, total), ""]
        breakdowns = {}
        for r in self.records.values():
            if (r.get("kind") == "trade" and r["region"] == self.region and r["flow"] == "total"
                    and r["period"] == period and r["dimension"] != "total"):
                breakdowns.setdefault(r["dimension"], []).append(r)
        for dimension in sorted(breakdowns):
            lines.append(f"  by {dimension}:")
            members = sorted(breakdowns[dimension],
                             key=lambda r: (-Decimal(r["ytd_cny"]), r["member"]))
            for r in members:
                lines.append(f"    {r['member']:28s} {bn(r['ytd_cny']):>12s} yuan  "
                             f"share {pct(r['share_pct'], sign=False):>8s}  "
                             f"growth {pct(r['ytd_yoy_pct']):>9s}")
        freight = [self.latest_freight(p) for p in self.ports]
        for f in filter(None, freight):
            lines.append("")
            lines.append(freight_line(f))
        return "\n".join(lines), total

    def latest_freight(self, port):
        mine = [r for r in self.records.values()
                if r.get("kind") == "freight" and r["port"] == port]
        return max(mine, key=lambda r: (r["period"], r["service"]), default=None)


def bn(money):
    """A money string in billions, exactly (Decimal, never a float)."""
    if money is None:
        return "n/a"
    return f"{(Decimal(money) / BILLION).quantize(Decimal('0.01'))} bn"


def pct(value, sign=True):
    if value is None:
        return "n/a"
    return f"{value:+.1f} %" if sign else f"{value:.1f} %"


def headline(region, period, r):
    if r is None:
        return f"{region} {period}: no total record"
    rank = (f"rank {r['yoy_rank']} of {r['yoy_rank_of']}" if r.get("yoy_rank") is not None
            else "no rank")
    usd_growth = r.get("ytd_usd_yoy_pct")  # contract v2
    dollars = f"${bn(r['ytd_usd'])}" if r.get("ytd_usd") is not None else "$n/a"
    in_usd = f" (in dollars {pct(usd_growth)})" if usd_growth is not None else ""
    return (f"{region} {period}, January to month {r['months_in_ytd']}: "
            f"{bn(r['ytd_cny'])} yuan, {dollars}, {pct(r['ytd_yoy_pct'])}{in_usd}, {rank}")


def freight_line(f):
    return (f"{f['port']} {f['service']} {f['period']}: {f['ytd_trains']:,} trains in "
            f"{f['months_in_ytd']} months, {pct(f['ytd_yoy_pct'])}, "
            f"streak {f['streak_months']} months above {f['streak_threshold']}")


def open_consumer(args):
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        # Never committed: this reader assigns partitions itself and always starts over.
        "group.id": f"silkroute-downstream-example-{uuid.uuid4()}",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
    })
    metadata = consumer.list_topics(args.topic, timeout=30)
    topic = metadata.topics.get(args.topic)
    if topic is None or topic.error is not None or not topic.partitions:
        raise SystemExit(f"topic {args.topic} not found on {args.bootstrap}")
    partitions = sorted(topic.partitions)
    consumer.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in partitions])
    return consumer, partitions


def end_offsets(consumer, topic, partitions):
    """The last stable offset of every partition (read_committed: what a reader can reach)."""
    ends = {}
    for p in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
        if high > low:
            ends[p] = high
    return ends


def caught_up(consumer, topic, ends):
    """True when the position of every partition is at or past its end. Offsets that hold no
    message (transaction markers, compacted records) count as read."""
    if not ends:
        return True
    positions = consumer.position([TopicPartition(topic, p) for p in ends])
    return all(tp.offset >= ends[tp.partition] for tp in positions)


def main(argv):
    args = parse_args(argv)
    table = Table(args.region, args.ports)
    consumer, partitions = open_consumer(args)
    ends = end_offsets(consumer, args.topic, partitions)
    deadline = time.monotonic() + args.timeout
    dirty, shown = False, None
    try:
        while True:
            batch = consumer.consume(num_messages=1000, timeout=0.5)
            for m in batch:
                if m.error():
                    raise KafkaException(m.error())
                key = m.key().decode() if m.key() is not None else ""
                dirty |= table.apply(key, m.value())
            if args.once:
                if caught_up(consumer, args.topic, ends):
                    text, total = table.render()
                    print(text, flush=True)
                    return 0 if total is not None else 1
                if time.monotonic() > deadline:
                    print(f"not caught up with {args.topic} after {args.timeout:.0f} s",
                          file=sys.stderr)
                    return 1
            elif dirty and len(batch) < 1000:
                # Print once a burst of changes is applied, not after every thousand records.
                text, _ = table.render()
                if text != shown:
                    print(f"--- {time.strftime('%H:%M:%S')} ---\n{text}\n", flush=True)
                    shown = text
                dirty = False
    except KeyboardInterrupt:
        return 0
    finally:
        consumer.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
