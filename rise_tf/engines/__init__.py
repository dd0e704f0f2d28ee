"""Engines: each only assembles the parts (rise_tf/parts) of one run.

    serial       act, then learn, in turn: exactly reproducible
    concurrent   collection, sampling and learning in threads; a rate limiter holds the replay ratio
    (distributed: rise_tf/distributed — Reverb actors, learner and server as processes)
"""
