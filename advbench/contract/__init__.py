"""The plugin contract: what plugin authors implement and call.

Hook specifications, `Model`/`Network`, `Attack` and the tensors of an attack step, parameters,
losses, per-image randomness and the lazy TensorFlow accessor. It imports nothing of the engine,
the output or the lab; plugin authors import all of it from `advbench` itself.
"""
