"""Peers: other libraries ' agents run side by side with rise-tf (TF-Agents' recurrent DQN)."""
