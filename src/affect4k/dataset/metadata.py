"""What a release says about itself: its licence, versions, intended and prohibited uses, and
the documents built from them (``croissant.json`` with its Responsible-AI fields, the
datasheet, the citation, the licence and the changelog).

Apart from :mod:`affect4k.dataset.release`, which builds the tables and the folder, because
these are documents a reviewer reads: what they promise is policy, kept in one place.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from affect4k import CLIP_FPS, __version__
from affect4k.core.columns import DIMENSIONS
from affect4k.dataset.takedown import Takedown

#: The files of a release (but croissant.json and SHA256SUMS, which list them), in the order
#: croissant.json lists them, with their media types.
FILES = {
    "manifest.parquet": "application/x-parquet",
    "manifest.csv": "text/csv",
    "videos.csv": "text/csv",
    "traces.parquet": "application/x-parquet",
    "annotators.csv": "text/csv",
    "agreement.csv": "text/csv",
    "build.json": "application/json",
    "DATASHEET.md": "text/markdown",
    "LICENSE": "text/plain",
    "CHANGELOG.md": "text/markdown",
}


#: Licences the labels may be released under: SPDX id -> (name, URL).
LICENSES = {
    "CC-BY-4.0": (
        "Creative Commons Attribution 4.0 International",
        "https://creativecommons.org/licenses/by/4.0/",
    ),
    "CC-BY-NC-4.0": (
        "Creative Commons Attribution-NonCommercial 4.0 International",
        "https://creativecommons.org/licenses/by-nc/4.0/",
    ),
    "CC0-1.0": (
        "Creative Commons Zero v1.0 Universal",
        "https://creativecommons.org/publicdomain/zero/1.0/",
    ),
}


#: What the labels may and may not be used for (croissant.json's rai:dataUseCases, the
#: datasheet, LICENSE). The EU AI Act's prohibitions apply whatever the licence says.
INTENDED_USES = (
    "Research on continuous (per-frame) valence and arousal recognition from faces in the wild, "
    "and benchmarking such models; research on annotation (reaction lags, agreement, fusion)."
)


PROHIBITED_USES = (
    "Identifying, tracking or profiling the people shown (the release holds no identity and "
    "must not be linked to one). Inferring emotions of natural persons in the workplace or in "
    "education institutions, which the EU AI Act (Regulation (EU) 2024/1689, Art. 5(1)(f)) "
    "prohibits except for medical or safety reasons; biometric categorisation inferring race, "
    "political opinions, religion or sexual orientation (Art. 5(1)(g)); any decision about an "
    "individual (hiring, credit, insurance, policing, border control) taken on models trained "
    "on these labels."
)


@dataclass(frozen=True)
class ReleaseInfo:
    """The config's ``release`` section (schema), with the version a release actually gets."""

    name: str
    version: str
    license: str
    contact: str | None
    description: str
    url: str | None = None
    creators: tuple[str, ...] = ()
    citation: str | None = None


def release_version(version: str, takedowns: int) -> str:
    """``version`` with its patch number raised by one per takedown request, so a release
    without a video never carries the version of one that had it."""
    major, minor, patch = (int(part) for part in version.split("."))
    return f"{major}.{minor}.{patch + takedowns}"


def _data_type(series: pd.Series) -> str:
    """The Croissant (schema.org) data type of a column."""
    if pd.api.types.is_bool_dtype(series):
        return "sc:Boolean"
    if pd.api.types.is_integer_dtype(series):
        return "sc:Integer"
    if pd.api.types.is_float_dtype(series):
        return "sc:Float"
    return "sc:Text"


#: What each column of the release means (croissant.json's field descriptions).
COLUMN_NOTES = {
    "video": "The video's id in the release (videos.csv).",
    "youtube_id": "The YouTube id of the source video (empty for other sources).",
    "url": "Where the source video was downloaded from, as listed for the build.",
    "start_s": "Start of the clip in the source, seconds (empty: the source's start).",
    "end_s": "End of the clip in the source, seconds (empty: the source's end).",
    "frames": "Frames of the clip (25 fps).",
    "frame": "Frame index in the clip; frame f is at f / 25 s from the clip's start.",
    "time_s": "Time of the frame from the clip's start, seconds.",
    "source_time_s": "Time of the frame in the source video, seconds.",
    "face": "Whether the subject's face was found and verified on the frame.",
    "verification": "What face recognition said of the subject on the frame: verified or "
    "bridged (kept), unverified, rejected (only other people) or none (no face).",
    "score": "The face detector's confidence.",
    "crop_phash": "Perceptual hash (64-bit pHash, hex) of the aligned 112x112 crop, to check a "
    "rebuilt crop against; empty without a face.",
    "valence": "Fused valence label in [-1, 1] (NaN: unlabelled or not enough annotators).",
    "arousal": "Fused arousal label in [-1, 1] (NaN: unlabelled or not enough annotators).",
    "split": "train, validation or test (mixed in videos.csv: the sequence split).",
    "group": "What never straddles the split (a source video, a person, a channel).",
    "annotator": "The annotator's pseudonym.",
    "dimension": "valence or arousal.",
    "aligned": "The annotator's value on the frame after lag compensation.",
    "raw": "The annotator's value on the frame as traced (no lag compensation).",
}


def _record_set(name: str, description: str, file: str, table: pd.DataFrame) -> dict[str, Any]:
    fields = []
    for column in table.columns:
        fields.append(
            {
                "@type": "cr:Field",
                "@id": f"{name}/{column}",
                "name": column,
                "description": COLUMN_NOTES.get(column, f"Column {column} of {file}."),
                "dataType": _data_type(table[column]),
                "source": {"fileObject": {"@id": file}, "extract": {"column": column}},
            }
        )
    return {
        "@type": "cr:RecordSet",
        "@id": name,
        "name": name,
        "description": description,
        "field": fields,
    }


#: The JSON-LD context of Croissant 1.0 (its specification's), with the RAI vocabulary.
CROISSANT_CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}


@dataclass(frozen=True)
class BuildFacts:
    """What the datasheet and croissant.json say about this build (counted, not configured)."""

    videos: int
    frames: int
    face_frames: int
    labelled_frames: int
    hours: float
    annotators: tuple[str, ...]
    splits: dict[str, int]
    agreement: dict[str, float]
    takedowns: tuple[Takedown, ...]


def build_facts(
    manifest: pd.DataFrame,
    annotators: Sequence[str],
    agreement: pd.DataFrame,
    takedowns: Sequence[Takedown],
) -> BuildFacts:
    """Count what the release holds; ``agreement`` gives the all-annotator CCC per dimension."""
    labelled = manifest[list(DIMENSIONS)].notna().all(axis=1)
    everyone = agreement[(agreement["annotator_a"] == "*") & (agreement["stage"] == "aligned")]
    return BuildFacts(
        videos=int(manifest["video"].nunique()),
        frames=len(manifest),
        face_frames=int(manifest["face"].sum()),
        labelled_frames=int(labelled.sum()),
        hours=len(manifest) / CLIP_FPS / 3600,
        annotators=tuple(annotators),
        splits={str(k): int(v) for k, v in manifest["split"].value_counts().sort_index().items()},
        agreement={row.dimension: float(row.ccc) for row in everyone.itertuples()},
        takedowns=tuple(takedowns),
    )


def _rai(info: ReleaseInfo, facts: BuildFacts, settings: Mapping[str, Any]) -> dict[str, str]:
    """The Croissant RAI fields, answered from the config and the build."""
    annotation, faces = settings["annotation"], settings["faces"]
    contact = info.contact or "(no contact given)"
    return {
        "rai:dataCollection": (
            f"{facts.videos} video clips chosen by the dataset's creators, downloaded with "
            f"yt-dlp at up to {settings['download']['max_height']} lines and cut to 25 fps "
            "constant-frame-rate clips; the videos themselves are not redistributed, only "
            "their ids and the part of each used (videos.csv)."
        ),
        "rai:dataCollectionType": "Web scraping of public videos; manual human curation.",
        "rai:dataCollectionRawData": (
            "Public online videos (YouTube ids in videos.csv), owned by their uploaders."
        ),
        "rai:dataAnnotationProtocol": (
            f"{len(facts.annotators)} annotators traced valence and arousal continuously in "
            "[-1, 1] while watching each clip with a joystick (affect4k annotate), one "
            "dimension at a time. Traces are resampled to every frame; reaction lags are "
            f"compensated ({annotation['lag']}) and the annotators fused by "
            f"{annotation['fusion']}. traces.parquet holds every trace, raw and aligned; "
            "agreement.csv and annotators.csv the agreement."
        ),
        "rai:dataAnnotationPlatform": "affect4k annotate, a local web application.",
        "rai:annotationsPerItem": (
            f"{len(facts.annotators)} traces per dimension and frame (fewer where an annotator "
            "skipped a video)."
        ),
        "rai:annotatorDemographics": (
            "Not recorded by the build; annotators are named by pseudonyms "
            f"({', '.join(facts.annotators)})."
        ),
        "rai:machineAnnotationTools": (
            f"Face detection ({faces['detector']} on a {faces['detect_width']}-pixel-wide copy) "
            "and alignment of the subject's face; the subject is told apart from other people "
            "by dlib face descriptors within each video only, which the release does not hold."
        ),
        "rai:dataPreprocessingProtocol": (
            "Clips are trimmed and converted to 25 fps; one person per video (the subject) is "
            "kept; its face is aligned on five landmarks and cropped 112x112 from the "
            "full-resolution frame. The manifest gives the box, landmarks and a perceptual hash "
            "of each crop, so `affect4k rehydrate` can rebuild and check the crops."
        ),
        "rai:dataUseCases": f"Intended: {INTENDED_USES} Prohibited: {PROHIBITED_USES}",
        "rai:dataLimitations": (
            f"{facts.videos} videos and {facts.hours:.2f} hours; labels are the perception of "
            f"{len(facts.annotators)} annotators, not the felt emotion; videos disappear from "
            "YouTube over time, so a rehydrated copy may lack some; frames without a detected "
            "face or without enough annotators are unlabelled."
        ),
        "rai:dataBiases": (
            "The choice of videos decides who is shown (age, gender, skin tone, culture, "
            "recording conditions): none of it is balanced or recorded. The face detector "
            "misses some faces more than others, and annotators share their own cultural "
            "reading of expressions."
        ),
        "rai:personalSensitiveInformation": (
            "The source videos show identifiable people: faces are biometric data under the "
            "GDPR (Art. 9) when processed to identify someone. The release holds no pixels, no "
            "face embeddings and no identities, only boxes, landmarks, 64-bit crop hashes and "
            "labels, but it points at the videos. Anyone shown may ask for removal: "
            f"{contact}."
        ),
        "rai:dataSocialImpact": (
            "Emotion recognition can be misused for surveillance and manipulation and is "
            f"unreliable across people and cultures. {PROHIBITED_USES}"
        ),
        "rai:dataReleaseMaintenancePlan": (
            f"Takedown requests go to {contact}; each removes the video from every output, "
            "raises the release's patch version and is named in CHANGELOG.md. The release is "
            "rebuilt from the workflow (affect4k) whenever the list of videos changes."
        ),
    }


def citation(info: ReleaseInfo) -> str:
    """A plain citation of the release where the config gives none."""
    who = ", ".join(info.creators) or info.name
    where = f" {info.url}" if info.url else ""
    return f"{who}. {info.name}, version {info.version}. Dataset.{where}"


def croissant(
    info: ReleaseInfo,
    facts: BuildFacts,
    settings: Mapping[str, Any],
    files: Mapping[str, str],
    tables: Mapping[str, pd.DataFrame],
) -> dict[str, Any]:
    """croissant.json: Croissant 1.0 core (every file with its checksum, a record set per
    table) and the RAI fields. ``files`` maps a file name to its SHA-256; ``tables`` each
    record set's file to its table."""
    name, url = LICENSES[info.license]
    sets = {
        "manifest.parquet": ("frames", "One row per clip frame: where the face is, the labels."),
        "videos.csv": ("videos", "One row per video: its source and the part of it used."),
        "traces.parquet": ("traces", "Every annotator's trace on every frame."),
        "annotators.csv": ("annotators", "Each annotator's lag, weight and agreement."),
        "agreement.csv": ("agreement", "Agreement between the annotators, per dimension."),
    }
    document: dict[str, Any] = {
        "@context": CROISSANT_CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "name": info.name,
        "description": info.description,
        "version": info.version,
        "license": url,
        "datePublished": datetime.date.today().isoformat(),
        "keywords": ["valence", "arousal", "affect", "faces", "in the wild", "4K"],
        "creator": [{"@type": "sc:Person", "name": creator} for creator in info.creators],
        "citeAs": info.citation or citation(info),
        "distribution": [
            {
                "@type": "cr:FileObject",
                "@id": file,
                "name": file,
                "contentUrl": file,
                "encodingFormat": FILES[file],
                "sha256": digest,
            }
            for file, digest in files.items()
        ],
        "recordSet": [
            _record_set(set_name, description, file, tables[file])
            for file, (set_name, description) in sets.items()
        ],
        **_rai(info, facts, settings),
    }
    document["description"] += f" Labels licensed under {name}."
    if info.url:
        document["url"] = info.url
    return document


def datasheet(info: ReleaseInfo, facts: BuildFacts, settings: Mapping[str, Any]) -> str:
    """DATASHEET.md: the questions of Gebru et al.'s "Datasheets for Datasets" (2021),
    answered from the config and the build."""
    rai = _rai(info, facts, settings)
    splits = ", ".join(f"{side} {count}" for side, count in facts.splits.items())
    agreement = ", ".join(f"{dim} {ccc:.2f}" for dim, ccc in facts.agreement.items()) or "n/a"
    sections = {
        "Motivation": {
            "For what purpose was the dataset created?": info.description,
            "Who created it?": ", ".join(info.creators) or "See the contact below.",
        },
        "Composition": {
            "What do the instances represent?": (
                "Frames (25 fps) of video clips, each with the subject's face box, landmarks, a "
                "perceptual hash of its aligned crop and fused valence and arousal labels."
            ),
            "How many instances are there?": (
                f"{facts.frames} frames of {facts.videos} videos ({facts.hours:.2f} h); "
                f"{facts.face_frames} with the subject's face, {facts.labelled_frames} labelled."
            ),
            "Is there a label?": (
                "Valence and arousal in [-1, 1], per frame, fused from "
                f"{len(facts.annotators)} annotators ({settings['annotation']['fusion']})."
            ),
            "Are there recommended data splits?": (
                f"Yes, frames per split: {splits}. Split by {settings['database']['split']}: "
                "see the split and group columns."
            ),
            "Does the dataset contain all possible instances?": (
                "No. The videos are not included: videos.csv names them and `affect4k "
                "rehydrate` rebuilds the clips and crops while they stay online."
            ),
            "Does the dataset contain data that might be considered confidential or "
            "sensitive?": rai["rai:personalSensitiveInformation"],
            "Is it possible to identify individuals?": (
                "From the source videos, yes; the release itself holds no identity."
            ),
        },
        "Collection process": {
            "How was the data acquired?": rai["rai:dataCollection"],
            "Who was involved in the data collection process?": rai["rai:dataAnnotationProtocol"],
            "Were the individuals in question notified or did they consent?": (
                "No: the videos are public; the takedown process below applies."
            ),
        },
        "Preprocessing, cleaning, labelling": {
            "Was any preprocessing done?": rai["rai:dataPreprocessingProtocol"],
            "How reliable are the labels?": (
                f"Agreement of all annotators (CCC after lag compensation): {agreement}; "
                "agreement.csv and annotators.csv give every pair and annotator."
            ),
            "Is the software used available?": f"Yes: affect4k {__version__}.",
        },
        "Uses": {
            "What tasks is the dataset intended for?": INTENDED_USES,
            "What must it not be used for?": PROHIBITED_USES,
            "Is there anything a user should know about its composition?": (
                f"{rai['rai:dataLimitations']} {rai['rai:dataBiases']}"
            ),
        },
        "Distribution": {
            "How is the dataset distributed?": (
                "As this folder: manifest.parquet/.csv, videos.csv, traces.parquet, "
                "annotators.csv, agreement.csv, croissant.json; SHA256SUMS checks them."
            ),
            "Under which licence?": (
                f"The labels: {LICENSES[info.license][0]} (LICENSE). The videos stay under "
                "their owners' terms and are not distributed."
            ),
        },
        "Maintenance": {
            "Who maintains the dataset, and how can they be contacted?": (
                info.contact or "(no contact given)"
            ),
            "Will the dataset be updated?": rai["rai:dataReleaseMaintenancePlan"],
            "What has been removed?": (
                f"{len(facts.takedowns)} video(s) taken down: CHANGELOG.md says which and why."
                if facts.takedowns
                else "Nothing so far."
            ),
        },
    }
    text = f"# Datasheet: {info.name} {info.version}\n"
    for section, answers in sections.items():
        text += f"\n## {section}\n"
        for question, answer in answers.items():
            text += f"\n**{question}**\n{answer}\n"
    return text


def license_text(info: ReleaseInfo) -> str:
    """LICENSE: the labels' licence, and what it does not cover."""
    name, url = LICENSES[info.license]
    return (
        f"The labels, traces, manifest and metadata of {info.name} {info.version} are "
        f"licensed under the {name} licence ({info.license}): {url}\n\n"
        "The licence does not cover the source videos, which are not distributed and stay "
        "under their owners' terms, nor the people shown in them.\n\n"
        f"Whatever the licence allows, these uses are excluded: {PROHIBITED_USES}\n"
    )


def changelog(info: ReleaseInfo, base_version: str, takedowns: Sequence[Takedown]) -> str:
    """CHANGELOG.md: the release's first version, then one version per takedown request."""
    text = f"# Changelog of {info.name}\n\n## {base_version}\n\nThe videos of videos.csv.\n"
    for number, request in enumerate(sorted(takedowns, key=lambda r: r.date), 1):
        text += (
            f"\n## {release_version(base_version, number)}\n\n"
            f"Removed {request.id} (takedown of {request.date}): {request.reason}\n"
        )
    return text
