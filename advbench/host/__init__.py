"""The plugin host: loads built-in, installed and drop-in plugins and keeps their name tables."""
