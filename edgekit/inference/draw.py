"""``--save-images``: copies of the images with the detections (or the top class) drawn on them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import ImageDraw

from edgekit.inference.predict import read_image

COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6", "#bcf60c")


def save_drawn(results: list[dict[str, Any]], classes: list[str], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i, r in enumerate(results):
        im = read_image(Path(r["image"])).convert("RGB")
        draw = ImageDraw.Draw(im)
        for d in r.get("detections", []):
            colour = COLOURS[classes.index(d["class"]) % len(COLOURS)]
            draw.rectangle(d["box"], outline=colour, width=max(1, round(min(im.size) / 150)))
            draw.text((d["box"][0] + 2, d["box"][1] + 1), f"{d['class']} {d['score']:.2f}", fill=colour)
        if "top" in r and r["top"]:
            draw.text((3, 3), f"{r['top'][0]['class']} {r['top'][0]['score']:.2f}", fill="#ff0000")
        target = folder / f"{i:04d}_{Path(r['image']).stem}.png"
        im.save(target)
        written.append(target)
    return written
