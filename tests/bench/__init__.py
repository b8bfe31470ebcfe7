"""Tests of what the benchmarks build (bench/), e.g. the labelled near-duplicate set."""
