"""RISE-DQN as a TF-Agents agent (runs the base and the full-recurrent models unchanged)."""
