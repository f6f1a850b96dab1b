"""``affect4k annotate``: the study's joystick annotation tool as a local web app.

An annotator picks a video of the config and one dimension (valence or arousal, never both at
once, as in the study), watches a browser-playable copy of the very clip the crops come from
(:mod:`affect4k.video.web_copy`) and moves a value bar with a gamepad, the mouse or the
keyboard. The page samples the bar on the video's own frame clock, so its trace is on the
clip's frame grid by construction; the server (:mod:`affect4k.commands.annotation_app.server`)
writes it
where the ``annotate`` stage reads it (:mod:`affect4k.commands.annotation_app.trace_store`).
"""
