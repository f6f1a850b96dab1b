rule web_copy:
    """The clip as a browser-playable H.264 MP4 (frame f at f / 25 s) for `affect4k annotate`."""
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
        encoding=config["clips"],
    script:
        "../scripts/web_copy.py"
