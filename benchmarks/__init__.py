"""Side-by-side benchmarks against the anchor libraries (run as ``python -m benchmarks.<name>``)."""
