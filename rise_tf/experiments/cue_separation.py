"""How far apart a run's frozen encoder ϑ puts the memory task's cue frames, against the spread of its
corridor frames, beside the default random projection with the same seed (results/README.md, "A frozen
snapshot of a trained encoder as ϑ").

    python -m rise_tf.experiments.cue_separation RUN_DIR [RUN_DIR ...]

It builds the run's ϑ (TensorFlow), so it lives here and not in the TensorFlow-free analysis package.
"""
from __future__ import annotations

import itertools
import sys
from typing import Dict, List, Optional

import numpy as np


def corridor_frames(config, cue: int) -> np.ndarray:
    """One episode's frames with the given cue (no distractors), as the env draws them."""
    from rise_runtime.envs.memory_task import MemoryCorridorEnv

    env = MemoryCorridorEnv(corridor_length=config.env.corridor_length, num_cues=config.env.num_cues,
                            cue_steps=config.env.cue_steps, distractor_prob=0.0, frame_size=config.env.frame_size)
    return env.frames_with_cue(cue)


def separation(encode, config) -> Dict[str, float]:
    first, second = corridor_frames(config, 0), corridor_frames(config, 1)
    steps = config.env.cue_steps
    cue_a, cue_b = encode(first[:1]), encode(second[:1])
    corridor = encode(first[steps:-1])
    spread = float(np.mean([np.linalg.norm(x - y) for x, y in itertools.combinations(corridor, 2)]))
    gap = float(np.linalg.norm(cue_a - cue_b))
    return {"cue_gap": gap, "corridor_spread": spread, "ratio": gap / spread, "cue_norm": float(np.linalg.norm(cue_a))}


def main(argv: Optional[List[str]] = None) -> int:
    import tensorflow as tf

    from rise_tf.networks.encoders import make_frozen_encoder
    from rise_tf.run_dir import load_run_config
    from rise_tf import builder

    runs = sys.argv[1:] if argv is None else argv
    if not runs:
        print(__doc__, file=sys.stderr)
        return 2
    print("| run | ϑ | cue gap | corridor spread | ratio | cue norm |\n|---|---|---:|---:|---:|---:|")
    for run in runs:
        config = load_run_config(run)
        encoders = {config.network.frozen_encoder.split(":")[0]: builder.frozen_encoder(config),
                    "random_projection": make_frozen_encoder("random_projection", embedding_size=config.network.embedding_size,
                                                             seed=config.frozen_seed)}
        for name, encoder in encoders.items():
            s = separation(lambda frames: encoder(tf.constant(frames)).numpy(), config)
            print(f"| {run} | {name} | {s['cue_gap']:.3f} | {s['corridor_spread']:.3f} | {s['ratio']:.2f} | {s['cue_norm']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
