"""rise-tf: RISE (Recurrent Integration via Simplified Encodings) on TensorFlow / TF-Agents.

This package root imports nothing heavy on purpose: `rise_runtime` and
`rise_runtime.preprocessing` must be importable on a machine without TensorFlow.
"""

__version__ = "0.1.0"
