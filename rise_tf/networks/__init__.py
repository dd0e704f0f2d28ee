"""Keras encoders and the RISE Q-network. Imports no other rise_tf module (see DESIGN.md)."""
