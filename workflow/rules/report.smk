# Figures and tables of `snakemake --report results/report.html`: each is a rule output marked
# with report() and a caption from workflow/report/, built by the default target.
REPORT = "results/report"


#: Every figure of the report (rule all asks for them).
REPORT_FIGURES = [
    f"{REPORT}/database.html",
    f"{REPORT}/database.png",
    f"{REPORT}/agreement.png",
    f"{REPORT}/annotators.png",
    *(f"{REPORT}/qc/{video}.png" for video in VIDEOS),
]
if RUNS:
    REPORT_FIGURES += [
        f"{REPORT}/results.html",
        f"{REPORT}/results.png",
        f"{REPORT}/predictions.png",
    ]
    REPORT_FIGURES += [f"{REPORT}/training/{run}.png" for run in RUNS]
    if ABLATION:
        REPORT_FIGURES.append(f"{REPORT}/ablation.png")


rule report_results:
    """The results table as a sortable page, and its mean CCCs with intervals as a figure."""
    input:
        "results/tables.csv",
    output:
        table=report(
            f"{REPORT}/results.html",
            caption="../report/results.rst",
            category="1. Results",
        ),
        figure=report(
            f"{REPORT}/results.png",
            caption="../report/results.rst",
            category="1. Results",
        ),
    log:
        "logs/report/results.log",
    conda:
        "../../envs/numpy.yaml"
    threads: 1
    params:
        code=package_code("report.py"),
    script:
        "../scripts/report.py"


rule report_ablation:
    """Test CCC (with intervals) against the clips' resolution, input size and face size."""
    input:
        "results/ablation.csv",
    output:
        report(
            f"{REPORT}/ablation.png",
            caption="../report/ablation.rst",
            category="1. Results",
        ),
    log:
        "logs/report/ablation.log",
    conda:
        "../../envs/numpy.yaml"
    threads: 1
    params:
        code=package_code("report.py"),
    script:
        "../scripts/report.py"


rule report_predictions:
    """Labels and predictions over time on the test videos of the run chosen on validation."""
    input:
        tables="results/tables.csv",
        predictions=[f"results/predictions/{run}/test.parquet" for run in RUNS],
    output:
        report(
            f"{REPORT}/predictions.png",
            caption="../report/predictions.rst",
            category="1. Results",
        ),
    log:
        "logs/report/predictions.log",
    conda:
        "../../envs/numpy.yaml"
    threads: 1
    params:
        code=package_code("report.py"),
        runs=list(RUNS),
    script:
        "../scripts/report.py"


rule report_training:
    """Loss and train/validation CCC and MSE per epoch of one run."""
    input:
        "results/models/{run}/history.csv",
    output:
        report(
            f"{REPORT}/training/{{run}}.png",
            caption="../report/training.rst",
            category="2. Training",
            labels={"run": "{run}"},
        ),
    log:
        "logs/report/training/{run}.log",
    conda:
        "../../envs/numpy.yaml"
    threads: 1
    params:
        code=package_code("report.py"),
    script:
        "../scripts/report.py"


rule report_database:
    """Size of the database per video and split, and the annotators' agreement."""
    input:
        annotations="results/split.parquet",
        agreement="results/agreement.csv",
    output:
        table=report(
            f"{REPORT}/database.html",
            caption="../report/database.rst",
            category="3. Database",
        ),
        overview=report(
            f"{REPORT}/database.png",
            caption="../report/database.rst",
            category="3. Database",
        ),
        agreement=report(
            f"{REPORT}/agreement.png",
            caption="../report/agreement.rst",
            category="3. Database",
        ),
    log:
        "logs/report/database.log",
    conda:
        "../../envs/numpy.yaml"
    threads: 1
    params:
        code=package_code("report.py"),
    script:
        "../scripts/report.py"


rule report_annotators:
    """Each annotator's lag, fusion weight and agreement, before and after lag compensation."""
    input:
        annotators="results/annotators.csv",
        agreement="results/agreement.csv",
    output:
        report(
            f"{REPORT}/annotators.png",
            caption="../report/annotators.rst",
            category="3. Database",
        ),
    log:
        "logs/report/annotators.log",
    conda:
        "../../envs/numpy.yaml"
    threads: 1
    params:
        code=package_code("report.py"),
    script:
        "../scripts/report.py"


rule report_qc:
    """One video's identities, its subject over time and a contact sheet of its crops."""
    input:
        table="results/faces/{video}.parquet",
        crops="results/faces/{video}.npy",
        identities="results/faces/{video}.identities.parquet",
    output:
        report(
            f"{REPORT}/qc/{{video}}.png",
            caption="../report/qc.rst",
            category="4. Quality control",
            labels={"video": "{video}"},
        ),
    log:
        "logs/report/qc/{video}.log",
    conda:
        "../../envs/numpy.yaml"
    threads: 1
    params:
        code=package_code("report.py"),
    script:
        "../scripts/report.py"
