"""warmline.agent."""
