"""The workflow's config: its schema (package data), the checks and defaults every key gets, the
videos list, training runs, and the code digest each rule carries.
"""
