rule web_copy:
    """The clip as a browser-playable MP4 (same H.264 frames, f / 25 s each) for `affect4k annotate`."""
    input:
        "results/clips/{video}.avi",
    output:
        "results/web/{video}.mp4",
    log:
        "logs/web_copy/{video}.log",
    conda:
        "../../envs/web.yaml"
    threads: 1
    params:
        code=package_code("web_copy.py"),
    script:
        "../scripts/web_copy.py"
