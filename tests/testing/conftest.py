"""The plugin is tested with pytest's own ``pytester``: inner pytest runs in a temp dir."""

pytest_plugins = ["pytester"]
