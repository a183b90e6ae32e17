"""Pieces of `make bench` (scripts/bench.py): load generation, the bare Kafka relay baseline,
CPU and Kafka-record accounting, statistics and the chart."""
