"""Speed: the benchmark, the fast-path checks, the GPU session check and the CPU speedrun."""
