"""Policy storage: reading and validating policy rows."""
