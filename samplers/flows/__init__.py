"""Each straight-flow family's convention, one torch-only module per family (no ComfyUI import).

A convention is what turns a UNet output into ComfyUI's sampling quantities: the time scale (sigma
and the UNet timestep), the noising of an image to a noise level, the velocity and its sign, and the
image estimate ("denoised") that every k-diffusion sampler consumes, plus the family's official
schedule. instaflow.py: InstaFlow and 2-Rectified Flow. perflow.py: PeRFlow. docs/conventions.md
puts them side by side with their sources.
"""
