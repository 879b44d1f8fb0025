"""warmline.offload."""
