"""Wharf's benchmark suite: ``python -m bench <name> [--scale …] [--quick]`` (see docs/performance.md)."""
