"""Test-only node: a ControlNet that is fed a wrong timestep while the UNet keeps the right one.

Shows that the ControlNet equivalence tests can fail when the control model does not see the UNet's
timestep (sigma * 1000, flow_math/flows/instaflow.py). It swaps the model_sampling the ControlNet reads
in pre_run (comfy/controlnet.py ControlNet.get_control uses model_sampling_current.timestep) for one
of the pack's broken timestep variants.
"""
import copy

TIMESTEP_VARIANTS = ("timestep_unscaled", "timestep_reversed")


def _with_broken_timestep(control_class, sampling_variant):
    class BrokenTimestepControl(control_class):
        def copy(self):  # ControlNetApply* copy the ControlNet; keep the breakage on the copy
            c = super().copy()
            c.__class__ = type(self)
            return c

        def pre_run(self, model, percent_to_timestep_function):
            super().pre_run(model, percent_to_timestep_function)
            sampling = copy.copy(self.model_sampling_current)
            sampling.__class__ = sampling_variant(type(sampling))
            self.model_sampling_current = sampling

    return BrokenTimestepControl


class InstaFlowBrokenControlNet:
    CATEGORY = "testing"
    FUNCTION = "execute"
    RETURN_TYPES = ("CONTROL_NET",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"control_net": ("CONTROL_NET",), "variant": (list(TIMESTEP_VARIANTS),)}}

    def execute(self, control_net, variant):
        from . import VARIANTS  # the package's broken model_sampling variants

        broken = control_net.copy()
        broken.__class__ = _with_broken_timestep(type(control_net), VARIANTS[variant])
        return (broken,)
