"""How a run's lanes step, TensorFlow-free (the config validates against it, `--help` lists it)."""

# serial: one after another in this process | threads: TF-Agents' thread pool | processes: one process
# per lane (ParallelPyEnvironment) | vector: ale-py's native AtariVectorEnv (C++ threads; Atari only)
# | auto: vector for Atari games (the fastest here, see bench.md's collection table), serial otherwise.
PARALLEL_MODES = ("auto", "serial", "threads", "processes", "vector")


def lane_mode(parallel: str, atari: bool) -> str:
    """The way lanes actually step: 'auto' resolved for an Atari game (atari=True) or any other env."""
    if parallel == "auto":
        return "vector" if atari else "serial"
    return parallel
