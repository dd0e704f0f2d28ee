"""The value-based TF-Agents agent (DQN and BTR bases, RISE or not), its pure losses and loss choices."""
