"""Performance benchmarks (pytest-benchmark, marked ``bench``): ``make bench``; figures in docs/performance.md."""
