"""An example lab plugin for pyama: see plugin.py (registrations) and algorithms.py."""
