"""ComfyUI glue, generic over the flow families in samplers/flows: model sampling objects and the
patch that puts them on a model, scheduler/sampler registration, the all-in-one sampling call, and
the checks run before sampling."""
