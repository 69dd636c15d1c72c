"""ComfyUI glue over flow_math/, generic over the flow families in flow_math/flows: model sampling objects and
the patch that puts them on a model, scheduler/sampler registration, the families' schedules for a model, the
all-in-one sampling and inversion calls, and the checks run before sampling."""
