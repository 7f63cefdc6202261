"""One module per resource; handlers stay thin."""
