"""Video stages: download a source, cut the 25 fps clip, unpack frames, and the browser-playable
web copy.
"""
