"""Incremental channel-group network (see :mod:`.net`)."""
