"""Test-only nodes for the tests of the test harness itself (tests/test_server_harness.py): a constant, to
show the pack's nodes are served, and a node that raises, to show how the harness reports a failed prompt."""

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


NODE_CLASS_MAPPINGS = {"HarnessConstInt": HarnessConstInt, "HarnessRaise": HarnessRaise}
NODE_DISPLAY_NAME_MAPPINGS = {"HarnessConstInt": "Harness Const Int"}
