from pathlib import Path

from common import job

with job(snakemake) as sm:
    from affect4k.faces.ablation_crops import CropCell, write_cell_crops

    write_cell_crops(
        Path(sm.input.clip),
        Path(sm.input.native),
        [
            CropCell(height, crop_size, Path(crops), Path(table))
            for (height, crop_size), crops, table in zip(
                sm.params.cells, sm.output.crops, sm.output.tables, strict=True
            )
        ],
        Path(sm.output.spans),
        video_id=sm.wildcards.video,
    )
