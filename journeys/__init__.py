"""Journey definitions (YAML, validated on load) and the pure engine that moves cases along them.

Imports neither `hub` nor `channels`; reads nothing but the definition files.
"""
