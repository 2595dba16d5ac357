"""The engine: data, sessions, checkpoints and training, the early-stopping driver, the runner
and a run's plan and execution. It imports the contract and the output layer, never the lab or
the command line."""
