"""affect4k: build an in-the-wild 4K valence/arousal face database and train CNN-RNNs on it."""

#: The one version of the package and workflow (pyproject.toml reads it; CHANGELOG.md, tags).
__version__ = "0.2.0"

#: Frame rate of every clip in the database; frame ``f`` of a clip is time ``f / CLIP_FPS`` s.
CLIP_FPS = 25
#: Environment variable naming the ffmpeg binary (config key ``ffmpeg``); unset = the wheel's.
FFMPEG_ENV = "AFFECT4K_FFMPEG"
