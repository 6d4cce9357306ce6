"""The pytest plugin (``pytest11`` entry point): fixtures that capture spans in memory."""
