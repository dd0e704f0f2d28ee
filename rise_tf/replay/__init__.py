"""Replay: per-step storage of frames and frozen embeddings; window, stack and n-step sampling.

Imports neither networks nor agents (see DESIGN.md): what to build for the network is named by the
keys of its input spec, passed in as strings.
"""
