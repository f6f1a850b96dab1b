"""Numbers: the tables stage, the resolution ablation, external corpora and the people they share
with the database.
"""
