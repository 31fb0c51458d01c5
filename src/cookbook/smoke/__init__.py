"""Smoke fixtures: an offline tiny model and generated data, so every recipe runs on a CPU with no downloads.

Production plumbing never imports this package; `RunConfig.resolve()` reaches it only in smoke mode.
"""
