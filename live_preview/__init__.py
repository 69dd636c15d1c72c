"""Live preview output: images encoded where they lie (nvJPEG on CUDA when torchvision has it, else the
CPU) and sent over ComfyUI's websocket to the client that queued the prompt; nothing written to disk.

- image_encoding: torch-only (IMAGE batch -> one tiled uint8 picture -> JPEG / WebP bytes).
- websocket_frames: ComfyUI glue (the binary preview frames and who receives which).
"""
