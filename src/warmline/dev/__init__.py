"""warmline.dev."""
