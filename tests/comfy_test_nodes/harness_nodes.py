"""Test-only nodes for the tests of the test harness itself (tests/test_server_harness.py): a constant, to
show the pack's nodes are served, a node that raises, to show how the harness reports a failed prompt, and
a node that works until interrupted, to show that a failed test leaves the server idle."""
import time

ANSWER = 42


class HarnessConstInt:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {}}

    RETURN_TYPES = ("INT",)
    FUNCTION = "run"
    CATEGORY = "testing"

    def run(self):
        return (ANSWER,)


class HarnessRaise:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"message": ("STRING", {"default": "boom"})}}

    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "run"
    CATEGORY = "testing"

    def run(self, message):
        raise ValueError(message)


class HarnessBusy:
    """Busy for `seconds`, in steps that honour an interrupt like a sampler's model calls do."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seconds": ("FLOAT", {"default": 600.0, "min": 0.0}), "tag": ("INT", {"default": 0})}}

    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "run"
    CATEGORY = "testing"

    def run(self, seconds, tag):
        import comfy.model_management

        end = time.monotonic() + seconds
        while time.monotonic() < end:
            comfy.model_management.throw_exception_if_processing_interrupted()
            time.sleep(0.05)
        return {}


NODE_CLASS_MAPPINGS = {"HarnessConstInt": HarnessConstInt, "HarnessRaise": HarnessRaise, "HarnessBusy": HarnessBusy}
NODE_DISPLAY_NAME_MAPPINGS = {"HarnessConstInt": "Harness Const Int"}
