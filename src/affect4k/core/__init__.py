"""The ground floor every stage stands on: errors, atomic files, progress, ffmpeg, images, table
columns, CCC and the workflow scripts' job wrapper. Imports nothing else of the package.
"""
