"""One exception type for every input the pipeline refuses.

Workflow scripts catch :class:`Affect4kError` and print only its message, so a user sees
which video, file, line or config key is wrong instead of a traceback from inside a library.
"""


class Affect4kError(Exception):
    """A bad input or failed external step, described in words a user can act on."""
