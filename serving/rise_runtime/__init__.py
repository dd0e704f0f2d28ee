"""rise-runtime: run policies exported by rise-tf (RISE, Clark, Evers & Hare, arXiv 2512.20513) in real
time without TensorFlow — numpy + onnxruntime.

    preprocessing   the one frame pipeline (training imports it from here); numpy, OpenCV-identical
    contract        the step model's tensor names and metadata keys (docs/model-contract.md)
    runner          Policy: load an exported model, keep the recurrent state, act
    envs            the envs as the agent sees them (Atari, MemoryCorridor, any gymnasium image env)
    play, server    rise-play and rise-serve
"""

__version__ = "0.1.0"
