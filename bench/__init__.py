"""Benchmarks of the qa assistant: quality on ../shared/eval (bench.eval), speed at scale, txtai beside it."""
