"""Benchmarks (`make bench`): each writes bench/results/<name>.json with the machine it ran on."""
