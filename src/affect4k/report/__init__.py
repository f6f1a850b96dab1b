"""The Snakemake report's figures (:mod:`affect4k.report.figures.figures`) drawn in one style
(:mod:`affect4k.report.figures.plots`).
"""
