"""A drop-in advbench plugin file: `advbench run --plugins plugins/examples/dropin`.

Attack `contrast`: blend the image toward uniform grey a little more each step until the label
flips — how much contrast a model needs, a perturbation no gradient is involved in.
"""

from advbench import CLIP_PARAMS, Attack, Param, hookimpl, tf


class Contrast(Attack):
    name = "contrast"
    description = "drop-in example: fade toward grey until the label flips"
    params = (
        Param(
            "step",
            0.02,
            "share of grey added per step",
            float,
            minimum=0.0,
            min_exclusive=True,
            maximum=1.0,
        ),
        Param("iterations", 50, "most steps", int, minimum=1),
        *CLIP_PARAMS,
    )

    def step(self, net, s, params):
        alpha = tf().minimum(1.0, params["step"] * tf().cast(s.iteration + 1, tf().float32))
        return (1.0 - alpha) * s.x0 + alpha * 0.5


@hookimpl
def register_attacks(register):
    register(Contrast())
