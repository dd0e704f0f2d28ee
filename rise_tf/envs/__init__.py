"""The training side of the environments: TF-Agents PyEnvironments over the gymnasium-level envs,
which live in the runtime (rise_runtime.envs) so that rise-play runs exactly what training ran."""
