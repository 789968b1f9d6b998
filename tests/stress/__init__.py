"""Long load, fault and fuzz runs (``make stress``)."""
