import functools
import http.server
import os
import re
import socket
import threading
from pathlib import Path

import ffmpeg
import pytest
from helpers.download import FRAMES, assert_is_the_source

from affect4k.config.schema import schema_default
from affect4k.core.errors import Affect4kError
from affect4k.core.media import count_frames, probe_video, run_ffmpeg
from affect4k.video.download import download_video, local_source, tracked_source

#: What the workflow passes for ``download.max_height`` unless a config sets it.
MAX_HEIGHT = schema_default("download.max_height")


@pytest.fixture
def workdir(tmp_path, monkeypatch, source_video) -> Path:
    """A current directory holding a copy of the source, so relative paths and strays show."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "source.mp4").write_bytes(source_video.read_bytes())
    return tmp_path


@pytest.fixture
def http_url(workdir):
    """Base URL of a loopback HTTP server serving ``workdir``."""
    handler = functools.partial(QuietHandler, directory=str(workdir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        pass


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("how", ["file_url", "relative_path", "absolute_path", "http"])
def test_downloads_into_matroska_at_out_path(workdir, http_url, how):
    url = {
        "file_url": (workdir / "source.mp4").as_uri(),
        "relative_path": "source.mp4",
        "absolute_path": str(workdir / "source.mp4"),
        "http": f"{http_url}/source.mp4",
    }[how]
    out = workdir / "downloads" / "v1.mkv"
    assert download_video("v1", url, out, max_height=MAX_HEIGHT) == out
    assert_is_the_source(out)
    assert files_under(workdir) == {"source.mp4", "downloads", "downloads/v1.mkv"}


MASTER_PLAYLIST = """#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="en",DEFAULT=YES,URI="audio/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=100000,RESOLUTION=64x48,CODECS="avc1.64000a",AUDIO="aud"
small/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=200000,RESOLUTION=128x96,CODECS="avc1.64000b",AUDIO="aud"
large/index.m3u8
"""


@pytest.mark.parametrize(("max_height", "height"), [(48, 48), (95, 48), (2160, 96)])
def test_merges_best_separate_streams_up_to_max_height(workdir, http_url, max_height, height):
    """Like YouTube's DASH: video-only renditions and a separate audio stream to merge."""
    for name, size in (("small", "64x48"), ("large", "128x96")):
        (workdir / name).mkdir()
        video = ffmpeg.input(f"testsrc=size={size}:rate=25", f="lavfi")
        hls = video.output(
            f"{name}/index.m3u8",
            vcodec="libx264",
            pix_fmt="yuv420p",
            f="hls",
            hls_playlist_type="vod",
            **{"frames:v": FRAMES},
        )
        run_ffmpeg(hls, f"test {name} rendition")
    (workdir / "audio").mkdir()
    tone = ffmpeg.input("sine", f="lavfi", t=FRAMES / 25)
    run_ffmpeg(tone.output("audio/index.m3u8", f="hls", hls_playlist_type="vod"), "test audio")
    (workdir / "master.m3u8").write_text(MASTER_PLAYLIST)
    out = workdir / "v1.mkv"
    download_video("v1", f"{http_url}/master.m3u8", out, max_height=max_height)
    info = probe_video(out)
    assert (info.height, info.has_audio) == (height, True)
    assert count_frames(out) == FRAMES


XSPF_PLAYLIST = """<?xml version="1.0" encoding="UTF-8"?>
<playlist version="1" xmlns="http://xspf.org/ns/0/"><trackList>
<track><location>source.mp4</location></track><track><location>source.mp4</location></track>
</trackList></playlist>
"""


def test_playlist_is_refused_before_downloading(workdir, http_url):
    (workdir / "list.xspf").write_text(XSPF_PLAYLIST)
    out = workdir / "downloads" / "v1.mkv"
    with pytest.raises(Affect4kError, match=r"video v1: .*list\.xspf is a playlist"):
        download_video("v1", f"{http_url}/list.xspf", out, max_height=MAX_HEIGHT)
    assert list(out.parent.iterdir()) == []


def test_rerun_replaces_existing_output(workdir):
    out = workdir / "v1.mkv"
    out.write_bytes(b"stale")
    download_video("v1", "source.mp4", out, max_height=MAX_HEIGHT)
    assert_is_the_source(out)


def test_local_source():
    assert local_source("https://www.youtube.com/watch?v=x") is None
    assert local_source("http://127.0.0.1:8000/a.mp4") is None
    assert local_source("file:///data/a%20b.mp4") == Path("/data/a b.mp4")
    assert local_source("file://localhost/data/a.mp4") == Path("/data/a.mp4")
    assert local_source("videos/a.mp4") == Path.cwd() / "videos" / "a.mp4"
    with pytest.raises(Affect4kError, match="must name a file on this machine"):
        local_source("file://otherhost/data/a.mp4")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("missing.mp4", "No such file or directory"),
        ("file:///nonexistent/missing.mp4", "No such file or directory"),
        # The port is found when the test runs: a collection-time port would differ between
        # pytest-xdist's workers, which must collect the same tests.
        ("http://127.0.0.1:{closed}/source.mp4", "Connection refused"),
        ("{http}/missing.mp4", "404"),
        ("notes.txt", ""),
    ],
)
def test_failure_names_video_url_and_reason(workdir, http_url, url, reason):
    (workdir / "notes.txt").write_text("not a video\n")
    url = url.format(http=http_url, closed=closed_port() if "{closed}" in url else "")
    out = workdir / "downloads" / "v1.mkv"
    with pytest.raises(Affect4kError) as caught:
        download_video("v1", url, out, max_height=MAX_HEIGHT)
    message = str(caught.value)
    assert message.startswith("video v1: ") and url in message and reason in message
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_audio_only_file_is_not_a_video(workdir):
    run_ffmpeg(ffmpeg.input("sine", f="lavfi", t=1).output("tone.mp3"), "test audio")
    with pytest.raises(Affect4kError, match=r"video v1: tone\.mp3 has no video frame"):
        download_video("v1", "tone.mp3", workdir / "downloads" / "v1.mkv", max_height=MAX_HEIGHT)


HOSTILE = "$(touch {marker})`touch {marker}`;touch {marker}"


def test_hostile_urls_never_reach_a_shell(workdir, http_url):
    marker = workdir / "pwned"
    hostile = HOSTILE.format(marker=marker)
    # A local file really named like a command (run in this folder, it would make the marker):
    # downloaded as data. The marker's name is relative, so the name stays within 255 bytes.
    named = workdir / f"a;b {HOSTILE.format(marker=marker.name)}.mp4"
    named.write_bytes((workdir / "source.mp4").read_bytes())
    download_video("v1", named.name, workdir / "out" / "v1.mkv", max_height=MAX_HEIGHT)
    assert_is_the_source(workdir / "out" / "v1.mkv")
    # The query string is ignored by the server: the download must succeed, nothing runs.
    download_video(
        "v2",
        f"{http_url}/source.mp4?x={hostile}",
        workdir / "out" / "v2.mkv",
        max_height=MAX_HEIGHT,
    )
    assert_is_the_source(workdir / "out" / "v2.mkv")
    for url in (f"{http_url}/{hostile}", hostile, f"file://{hostile}"):
        with pytest.raises(Affect4kError, match="^video v3: "):
            download_video("v3", url, workdir / "out" / "v3.mkv", max_height=MAX_HEIGHT)
    assert not marker.exists()
    assert files_under(workdir) == {"source.mp4", named.name, "out", "out/v1.mkv", "out/v2.mkv"}


@pytest.fixture(scope="module")
def private_hls(tmp_path_factory, source_video) -> Path:
    """An HLS rendition of the source in a folder no server serves: this machine's files."""
    folder = tmp_path_factory.mktemp("private")
    hls = ffmpeg.input(str(source_video)).output(
        str(folder / "index.m3u8"), c="copy", f="hls", hls_playlist_type="vod", hls_time=10
    )
    run_ffmpeg(hls, "private rendition")
    return folder


def rewrite_segments(playlist: str, base: str) -> str:
    """``playlist`` with every segment line pointing into ``base``."""
    return "".join(
        line if line.startswith("#") or not line.strip() else f"{base}/{line}"
        for line in playlist.splitlines(keepends=True)
    )


@pytest.mark.parametrize("level", ["segments", "media_playlist", "web_page"])
def test_remote_manifest_cannot_read_local_files(workdir, http_url, private_hls, level):
    """A served playlist naming file:// segments (or a file:// media playlist, or a web page
    whose video is a file:// URL) is refused."""
    local = private_hls.as_uri()
    media = rewrite_segments((private_hls / "index.m3u8").read_text(), local)
    name, text = {
        "segments": ("evil.m3u8", media),
        "media_playlist": (
            "evil.m3u8",
            f"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000,RESOLUTION=64x48\n{local}/index.m3u8\n",
        ),
        "web_page": (
            "evil.html",
            f'<html><body><video src="{local}/index.m3u8"></video></body></html>',
        ),
    }[level]
    (workdir / name).write_text(text)
    url = f"{http_url}/{name}"
    out = workdir / "downloads" / "v1.mkv"
    with pytest.raises(Affect4kError) as caught:
        download_video("v1", url, out, max_height=MAX_HEIGHT)
    message = str(caught.value)
    assert message.startswith(f"video v1: cannot download {url}: ")
    assert "lists a file on this machine" in message
    assert not out.exists() and list(out.parent.iterdir()) == []
    # The same segments through a local playlist are the user's own files: allowed.
    (workdir / "mine.m3u8").write_text(media)
    download_video("v2", "mine.m3u8", workdir / "downloads" / "v2.mkv", max_height=MAX_HEIGHT)
    assert_is_the_source(workdir / "downloads" / "v2.mkv")


@pytest.fixture(scope="module")
def cut_source(tmp_path_factory) -> Path:
    """A 4 s MP4 with its index at the front, cut after a third: it opens like a whole one."""
    folder = tmp_path_factory.mktemp("cut")
    whole = folder / "whole.mp4"
    video = ffmpeg.input("testsrc=size=64x48:rate=25:duration=4", f="lavfi")
    audio = ffmpeg.input("sine=duration=4", f="lavfi")
    run_ffmpeg(
        ffmpeg.output(video, audio, str(whole), vcodec="libx264", movflags="+faststart"), "whole"
    )
    cut = folder / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    assert probe_video(cut).duration_s == pytest.approx(4, abs=0.05)
    return cut


@pytest.mark.parametrize("how", ["http", "path"])
def test_a_download_cut_short_is_refused_and_not_cached(workdir, http_url, cut_source, how):
    (workdir / "cut.mp4").write_bytes(cut_source.read_bytes())
    url = f"{http_url}/cut.mp4" if how == "http" else "cut.mp4"
    out = workdir / "downloads" / "v1.mkv"
    with pytest.raises(Affect4kError) as caught:
        download_video("v1", url, out, max_height=MAX_HEIGHT)
    message = str(caught.value)
    assert message.startswith(f"video v1: {url} is not a whole video: does not decode: ")
    # ffmpeg's first error (the demuxer or decoder hitting the missing part), no statistics.
    assert re.search(r"(mov,mp4,m4a,3gp,3g2,mj2: .*partial file|h264: )", message)
    assert "\n" not in message and "frame=" not in message and "kb/s" not in message
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_download_reports_bytes_as_progress_lines(workdir, http_url, capsys):
    out = workdir / "downloads" / "v1.mkv"
    download_video("v1", f"{http_url}/source.mp4", out, max_height=MAX_HEIGHT)
    lines = capsys.readouterr().err.splitlines()
    size = (workdir / "source.mp4").stat().st_size
    assert lines and all(line.startswith("download v1 (video.mp4): ") for line in lines)
    assert "100%" in lines[-1] and f"{size / 1000:.1f}k/{size / 1000:.1f}k" in lines[-1]
    assert out.stat().st_mode & 0o777 == 0o666 & ~current_umask()  # group-readable


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_tracked_source_is_the_file_itself_or_a_brace_free_link(workdir, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "v.mp4"
    outside.write_bytes(b"x")
    assert tracked_source("v1", "source.mp4") == "source.mp4"
    assert tracked_source("v1", (workdir / "source.mp4").as_uri()) == "source.mp4"
    assert tracked_source("v1", str(outside)) == str(outside)
    assert tracked_source("v1", "https://www.youtube.com/watch?v=x") is None
    assert tracked_source("v1", "clip{1}.mp4") is None  # no such file: the job names it
    braced = workdir / "clip{video}.mp4"
    braced.write_bytes(b"y")
    for url in ("clip{video}.mp4", braced.as_uri()):
        link = tracked_source("v1", url)
        assert link == "resources/sources/v1" and "{" not in link
        assert Path(link).is_symlink() and Path(link).resolve() == braced
    other = workdir / "clip{2}.mp4"
    other.write_bytes(b"z")
    assert Path(tracked_source("v1", "clip{2}.mp4")).read_bytes() == b"z"  # repointed


def test_an_h264_avi_from_a_camera_downloads_though_avi_stores_no_timestamps(tmp_path):
    """H.264 with B-frames in AVI has packets without timestamps, which Matroska refuses:
    the remux generates them, so such a local file becomes the same frames in the .mkv."""
    source = tmp_path / "camera.avi"
    run_ffmpeg(
        ffmpeg.input("testsrc=size=160x90:rate=25", f="lavfi", t=2).output(
            str(source), vcodec="libx264", bf=3, pix_fmt="yuv420p"
        ),
        "a test AVI",
    )
    out = tmp_path / "out" / "camera.mkv"
    download_video("camera", str(source), out, max_height=2160)
    assert count_frames(out) == count_frames(source) == 50
