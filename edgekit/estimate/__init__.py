"""Device latency estimates from an artifact's graph: walk it, cost each operator, fit per-target coefficients."""
