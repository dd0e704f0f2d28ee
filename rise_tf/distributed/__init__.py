"""Scale-out on Reverb (issue 11): the replay server's tables, actors, the learner and the launcher."""
