"""warmline.adapters."""
