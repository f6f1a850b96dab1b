"""The face stage (:mod:`affect4k.faces.extract.extract`) and its parts: detection, tracking,
identity, alignment, the ablation's crops, and who is who across videos.
"""
