"""Labels: raw annotation traces, annotator lags and fusion, calibration, and the database and
split stages.
"""
