"""Performance tooling: the memory planner, tensor byte counting, measured training loops, benchmark models
and the benchmark-only packing layouts. The recipes never import it; benchmarks, tests and the planner task do."""
