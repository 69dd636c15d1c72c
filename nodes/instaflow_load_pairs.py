import folder_paths
from comfy_api.v0_0_2 import io

from ..training.pairs_file import folder_signature, list_pairs_sets, pairs_folder
from ..training.teacher_pairs import open_pairs
from .schema_cache import schema_kept_while


class InstaFlowLoadPairs(io.ComfyNode):
    @classmethod
    @schema_kept_while(lambda: list_pairs_sets(folder_paths.get_output_directory()))
    def define_schema(cls, pairs_sets):
        return io.Schema(
            node_id="InstaFlowLoadPairs", display_name="InstaFlow Load Pairs", category="InstaFlow/training",
            description="Loads a set of training pairs made by InstaFlow Make Pairs (output/instaflow_pairs/<name>/).",
            inputs=[io.Combo.Input("pairs_name", options=pairs_sets,
                                   tooltip="A folder of output/instaflow_pairs.")],
            outputs=[io.Custom("INSTAFLOW_PAIRS").Output(
                display_name="pairs", tooltip="Every pair of the set, for the Train Reflow / Distill LoRA nodes.")])

    @classmethod
    def validate_inputs(cls, pairs_name):
        if pairs_name not in list_pairs_sets(folder_paths.get_output_directory()):
            return f"no pairs set {pairs_name!r} in output/instaflow_pairs"
        return True

    @classmethod
    def fingerprint_inputs(cls, pairs_name):
        # Re-run when the set changes on disk (pairs appended by another prompt).
        return folder_signature(pairs_folder(folder_paths.get_output_directory(), pairs_name))

    @classmethod
    def execute(cls, pairs_name):
        return io.NodeOutput(open_pairs(pairs_name))
