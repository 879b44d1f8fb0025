"""warmline.tools."""
