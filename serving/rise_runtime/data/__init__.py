"""Reference data shipped with the runtime (human and random Atari scores)."""
