"""Table layouts every stage shares: the dimensions and the columns that name them.

The bottom layer of the package (it imports nothing), so a numpy-only stage can name the
columns of a table without importing the stage that writes it.
"""

#: The two affect dimensions, in the order of every (valence, arousal) array and column pair.
DIMENSIONS = ("valence", "arousal")
#: Boolean annotation column of an imported corpus: True rows are still images, not frames.
STATIC_COLUMN = "static"
