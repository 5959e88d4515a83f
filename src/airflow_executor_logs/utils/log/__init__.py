"""Task-handler integration."""
