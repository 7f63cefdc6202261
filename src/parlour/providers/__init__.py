"""Model providers: one small protocol, one file per vendor."""
