"""The ``affect4k`` command and its subcommands: predict on any files, rehydrate a release, and the
annotation app.
"""
