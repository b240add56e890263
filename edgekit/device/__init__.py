"""Measuring on a real board: a self-contained runner, run locally or over ssh."""
