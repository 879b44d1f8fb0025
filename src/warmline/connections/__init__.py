"""warmline.connections."""
