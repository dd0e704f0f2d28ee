"""Policies that carry RISE's acting state: the frame stack and the window of frozen embeddings."""
