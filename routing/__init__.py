"""ACD: which operator answers a waiting caller, when, and what the caller hears meanwhile."""
