import folder_paths

from ..training.pairs_file import folder_signature, list_pairs_sets, pairs_folder
from ..training.teacher_pairs import open_pairs


class InstaFlowLoadPairs:
    DESCRIPTION = "Loads a set of training pairs made by InstaFlow Make Pairs (output/instaflow_pairs/<name>/)."
    CATEGORY = "InstaFlow/training"
    FUNCTION = "execute"
    RETURN_TYPES = ("INSTAFLOW_PAIRS",)
    RETURN_NAMES = ("pairs",)
    OUTPUT_TOOLTIPS = ("Every pair of the set, for the Train Reflow / Distill LoRA nodes.",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"name": (list_pairs_sets(folder_paths.get_output_directory()),
                                      {"tooltip": "A folder of output/instaflow_pairs."})}}

    @classmethod
    def IS_CHANGED(cls, name):
        return folder_signature(pairs_folder(folder_paths.get_output_directory(), name))

    def execute(self, name):
        return (open_pairs(name),)
