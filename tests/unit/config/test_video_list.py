import re

import pytest

from affect4k.config.video_list import (
    MAX_VIDEO_ID_LENGTH,
    VIDEO_ID_PATTERN,
    VideoEntry,
    read_videos,
    source_group,
)
from affect4k.core.errors import Affect4kError

HEADER = "video_id\turl\tstart\tend\n"


def write(tmp_path, text):
    path = tmp_path / "videos.tsv"
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_entries_in_order_skipping_comments_and_blank_lines(tmp_path):
    path = write(
        tmp_path,
        "# the study's videos\n"
        + HEADER
        + "\n"
        + "v01\thttps://www.youtube.com/watch?v=abc\t12.5\t70\n"
        + "# whole video next\n"
        + "v-02_b\tresources/demo/sources/v02.mp4\t\t\n"
        + "v03\tfile:///data/v03.mp4\t3\t\r\n",
    )
    assert read_videos(path) == [
        VideoEntry(
            "v01",
            "https://www.youtube.com/watch?v=abc",
            12.5,
            70.0,
            "https://youtube.com/watch?v=abc",  # no 11-character YouTube id: the URL normalised
        ),
        VideoEntry(
            "v-02_b",
            "resources/demo/sources/v02.mp4",
            None,
            None,
            "resources/demo/sources/v02.mp4",
        ),
        VideoEntry("v03", "file:///data/v03.mp4", 3.0, None, "/data/v03.mp4"),
    ]


def test_entries_are_immutable(tmp_path):
    (entry,) = read_videos(write(tmp_path, HEADER + "v1\thttp://x/v.mp4\t\t\n"))
    with pytest.raises(AttributeError):
        entry.video_id = "other"


@pytest.mark.parametrize("video_id", ["../x", "a;b", "$(touch x)", "`id`", "a/b", ".", "a b", "é"])
def test_rejects_ids_that_are_not_plain_file_names(tmp_path, video_id):
    path = write(tmp_path, HEADER + f"{video_id}\thttp://x/v.mp4\t\t\n")
    with pytest.raises(Affect4kError, match=r"videos\.tsv:2: video_id .* may only use"):
        read_videos(path)


def test_pattern_is_usable_as_snakemake_wildcard_constraint():
    assert re.fullmatch(VIDEO_ID_PATTERN, "v-01_A")
    assert not re.fullmatch(VIDEO_ID_PATTERN, "v/01")
    assert not VIDEO_ID_PATTERN.startswith("^") and not VIDEO_ID_PATTERN.endswith("$")


def test_duplicate_id_names_both_lines(tmp_path):
    path = write(tmp_path, HEADER + "v1\thttp://x/a.mp4\t\t\n#\nv1\thttp://x/b.mp4\t\t\n")
    with pytest.raises(Affect4kError, match=r"videos\.tsv:4: video_id v1 already used on line 2"):
        read_videos(path)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("v1\t\t\t", r":2: video v1 has an empty url"),
        ("v1\thttp://x/a.mp4\tabc\t", r":2: start 'abc' is not a plain decimal number"),
        ("v1\thttp://x/a.mp4\t\t1:30", r":2: end '1:30' is not a plain decimal number"),
        ("v1\thttp://x/a.mp4\t-1\t", r":2: start '-1' is not a plain decimal number"),
        ("v1\thttp://x/a.mp4\t\tnan", r":2: end 'nan' is not a plain decimal number"),
        ("v1\thttp://x/a.mp4\t5\t5", r":2: video v1 has end 5.0 s <= start 5.0 s"),
        ("v1\thttp://x/a.mp4\t6\t5", r":2: video v1 has end 5.0 s <= start 6.0 s"),
        ("v1\thttp://x/a.mp4\t\t0", r":2: video v1 has end 0.0 s <= start 0 s"),
        ("v1\thttp://x/a.mp4\t1", r":2: expected 4 tab-separated columns .* found 3"),
        ("v1 http://x/a.mp4 1 2", r":2: expected 4 tab-separated columns .* found 1"),
        ("v1\thttp://x/a.mp4\t1\t2\textra", r":2: expected 4 .* found 5"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, row, message):
    with pytest.raises(Affect4kError, match=r"videos\.tsv" + message):
        read_videos(write(tmp_path, HEADER + row + "\n"))


@pytest.mark.parametrize(
    "header",
    ["video_id\turl\tstart\n", "id\turl\tstart\tend\n", "video_id url start end\n", ""],
)
def test_wrong_or_missing_header(tmp_path, header):
    path = write(tmp_path, "# comment\n" + header + "v1\thttp://x/a.mp4\t\t\n")
    with pytest.raises(Affect4kError, match=r"videos\.tsv:2: header must be"):
        read_videos(path)


def test_list_without_videos_is_refused(tmp_path):
    with pytest.raises(Affect4kError, match="lists no videos"):
        read_videos(write(tmp_path, "# nothing yet\n" + HEADER))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(Affect4kError, match=r"absent\.tsv: cannot read"):
        read_videos(tmp_path / "absent.tsv")


def test_byte_order_mark_is_accepted(tmp_path):
    """Spreadsheet programs start UTF-8 exports with a BOM; trace files accept it too."""
    path = tmp_path / "videos.tsv"
    path.write_text(HEADER + "v1\thttp://x/a.mp4\t1\t2\n", encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert read_videos(path) == [VideoEntry("v1", "http://x/a.mp4", 1.0, 2.0, "https://x/a.mp4")]


@pytest.mark.parametrize("text", ["1_0", "1e3", "inf", "0x10", "+5", "1.", "١٢", "1,5"])
def test_seconds_are_plain_decimals(tmp_path, text):
    """float() reads '1_0' as 10 and '1e3' as 1000: a typo must not become another trim."""
    with pytest.raises(
        Affect4kError, match=rf":2: start {re.escape(repr(text))} is not a plain decimal"
    ):
        read_videos(write(tmp_path, HEADER + f"v1\thttp://x/a.mp4\t{text}\t\n"))


@pytest.mark.parametrize("text", ["0", "12", "12.5", ".5", "007.250"])
def test_plain_decimals_are_read(tmp_path, text):
    (entry,) = read_videos(write(tmp_path, HEADER + f"v1\thttp://x/a.mp4\t{text}\t\n"))
    assert entry.start == float(text)


def test_ids_are_limited_to_64_characters(tmp_path):
    longest = "v" * MAX_VIDEO_ID_LENGTH
    (entry,) = read_videos(write(tmp_path, HEADER + f"{longest}\thttp://x/a.mp4\t\t\n"))
    assert entry.video_id == longest and MAX_VIDEO_ID_LENGTH == 64
    too_long = "v" * 300
    with pytest.raises(Affect4kError, match=r"videos\.tsv:2: video_id 'v+'\.\.\. is 300 .* 64"):
        read_videos(write(tmp_path, HEADER + f"{too_long}\thttp://x/a.mp4\t\t\n"))
    assert not re.fullmatch(VIDEO_ID_PATTERN, "v" * 65)


def test_group_defaults_to_the_source_and_a_group_column_overrides_it(tmp_path):
    path = tmp_path / "videos.tsv"
    path.write_text(
        "video_id\turl\tstart\tend\tgroup\n"
        "a1\thttps://www.youtube.com/watch?v=JwrYfolGwvw\t0\t60\t\n"
        "a2\thttps://youtu.be/JwrYfolGwvw\t60\t120\t\n"
        "b\thttps://example.org/b.mp4\t\t\t\n"
        "c\tclips/c.mp4\t\t\tperson7\n"
        "d\tclips/d.mp4\t\t\tperson7\n"
    )
    groups = {entry.video_id: entry.group for entry in read_videos(path)}
    assert groups == {
        "a1": "youtube:JwrYfolGwvw",
        "a2": "youtube:JwrYfolGwvw",
        "b": "https://example.org/b.mp4",
        "c": "person7",
        "d": "person7",
    }
    four = tmp_path / "four.tsv"
    four.write_text("video_id\turl\tstart\tend\nx\thttps://youtu.be/JwrYfolGwvw\t\t\n")
    assert read_videos(four)[0].group == "youtube:JwrYfolGwvw"


def test_a_subject_column_names_a_photo_in_either_column_order(tmp_path):
    for header, row in [
        ("subject\tgroup", "photos/ann.jpg\tperson7"),
        ("group\tsubject", "person7\tphotos/ann.jpg"),
    ]:
        path = tmp_path / "videos.tsv"
        path.write_text(
            f"video_id\turl\tstart\tend\t{header}\n"
            f"a\tclips/a.mp4\t\t\t{row}\n"
            f"b\tclips/b.mp4\t\t\t\t\n"
        )
        a, b = read_videos(path)
        assert (a.subject, a.group) == ("photos/ann.jpg", "person7")
        assert (b.subject, b.group) == (None, "clips/b.mp4")


def test_a_person_column_names_the_subject_and_a_group_cell_is_marked_given(tmp_path):
    path = tmp_path / "videos.tsv"
    path.write_text(
        "video_id\turl\tstart\tend\tperson\tgroup\n"
        "a\tclips/a.mp4\t\t\tann\tstudio1\n"
        "b\tclips/b.mp4\t\t\t\t\n"
    )
    a, b = read_videos(path)
    assert (a.person, a.group, a.group_given) == ("ann", "studio1", True)
    assert (b.person, b.group, b.group_given) == (None, "clips/b.mp4", False)


@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        ("subject\tsubject", "x.jpg\ty.jpg", "header must be"),
        ("subject\tcolour", "x.jpg\tred", "header must be"),
        ("subject", "photos/{ann}.jpg", r"videos\.tsv:2: subject photo .* has braces"),
    ],
)
def test_a_bad_subject_column_is_refused_naming_the_line(tmp_path, header, row, message):
    path = tmp_path / "videos.tsv"
    path.write_text(f"video_id\turl\tstart\tend\t{header}\na\tclips/a.mp4\t\t\t{row}\n")
    with pytest.raises(Affect4kError, match=message):
        read_videos(path)


def test_one_local_source_written_four_ways_is_one_group(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "a.mp4").touch()
    (tmp_path / "link.mp4").symlink_to(tmp_path / "videos" / "a.mp4")
    absolute = str(tmp_path / "videos" / "a.mp4")
    forms = ["videos/a.mp4", "./videos/a.mp4", absolute, f"file://{absolute}", "link.mp4"]
    forms.append(f"file://localhost{tmp_path}/videos/../videos/a.mp4")
    assert {source_group(form) for form in forms} == {"videos/a.mp4"}
    assert source_group("videos/b.mp4") != source_group("videos/a.mp4")


@pytest.mark.parametrize(
    "url",
    [
        "https://www.youtube.com/watch?v=JwrYfolGwvw",
        "https://WWW.YouTube.com/watch/?v=JwrYfolGwvw",
        "http://youtube.com/watch?feature=share&v=JwrYfolGwvw",
        "https://m.youtube.com/watch?v=JwrYfolGwvw&t=42s",
        "https://music.youtube.com/watch?v=JwrYfolGwvw",
        "https://youtu.be/JwrYfolGwvw?si=Xy12&t=30",
        "https://www.youtube-nocookie.com/embed/JwrYfolGwvw?start=5",
        "https://www.youtube.com/e/JwrYfolGwvw",
        "https://www.youtube.com/v/JwrYfolGwvw",
        "https://www.youtube.com/shorts/JwrYfolGwvw",
        "https://www.youtube.com/live/JwrYfolGwvw?feature=shared",
    ],
)
def test_every_single_video_youtube_form_is_one_group(url):
    assert source_group(url) == "youtube:JwrYfolGwvw"


def test_http_urls_are_normalised_to_one_group():
    same = [
        "https://example.org/clips/b.mp4",
        "http://example.org/clips/b.mp4",
        "HTTPS://WWW.Example.ORG/clips/b.mp4/",
        "https://example.org:443/clips/b.mp4#t=10",
        "http://example.org:80/clips/b.mp4?utm_source=feed&utm_medium=x&fbclid=1&t=30",
    ]
    assert {source_group(url) for url in same} == {"https://example.org/clips/b.mp4"}
    # Parameters that select another resource, another port or another path stay apart.
    assert source_group("https://example.org/v?id=2&x=1") == "https://example.org/v?id=2&x=1"
    assert source_group("https://example.org/v?x=1&id=2") == "https://example.org/v?id=2&x=1"
    assert source_group("https://example.org/v?id=3") != source_group("https://example.org/v?id=2")
    assert source_group("https://example.org:8443/clips/b.mp4") != source_group(same[0])
