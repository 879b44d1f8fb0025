"""warmline.stores."""
