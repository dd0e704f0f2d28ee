"""The training loop as parts with public interfaces (Acme's split), assembled by the engines.

    counters      a run's progress (saved in every checkpoint); damaged counters are refused
    updates       the one "warm up, then hold the replay ratio" rule (pure; every engine, the Reverb
                  tables and the peer use it)
    schedules     ε and PER β over frames (pure)
    collector     lanes + TF-Agents driver + collect policy -> a step sink (replay), episode statistics
    learner       replay -> batch -> one update (one tf.function) -> priorities
    evaluator     whole episodes with the evaluation policy
    checkpointer  atomic checkpoints, replay persistence, restore with fallback to the newest good one
    run_log       TensorBoard, metrics.jsonl, progress bar, summary.json
    signals       Ctrl-C / SIGTERM that never split a lane step from its counters
    run           the parts of one run and what every engine does between steps (milestones, finish)

The builder (rise_tf/builder.py) alone reads the config and constructs them; the serial and
concurrent engines (rise_tf/engines) and the distributed actor and learner (rise_tf/distributed)
only assemble them. Importing this package loads nothing; counters, updates and schedules are
TensorFlow-free.
"""
