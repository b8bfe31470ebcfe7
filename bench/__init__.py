"""Benchmarks run by hand (bench/README.md), and the evaluation sets they and the tests share."""
