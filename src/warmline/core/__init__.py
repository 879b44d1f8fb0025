"""warmline.core."""
