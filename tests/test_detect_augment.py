"""Detection augmentation: seeded per epoch and image, and the boxes follow the pixels through every view."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekit.detect.augment import DetectionAugment, draw_views, flip, mosaic, zoom

SIZE = 64
PAD = torch.full((3,), 114 / 255)


def _scene(box: tuple[int, int, int, int]) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """A black image with one white box."""
    x = torch.zeros(3, SIZE, SIZE)
    x0, y0, x1, y1 = box
    x[:, y0:y1, x0:x1] = 1.0
    return x, np.array([box], np.float32), np.array([1])


def _white_inside(image: torch.Tensor, box: np.ndarray) -> float:
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    return float(image[:, y0 + 1:y1 - 1, x0 + 1:x1 - 1].min())


def test_views_repeat_for_a_seed_and_epoch_and_differ_between_epochs() -> None:
    a, b = draw_views(50, 3, 2, 10), draw_views(50, 3, 2, 10)
    assert torch.equal(a.scale, b.scale) and torch.equal(a.mosaic, b.mosaic) and torch.equal(a.partners, b.partners)
    assert not torch.equal(a.scale, draw_views(50, 3, 3, 10).scale)
    assert not torch.equal(a.scale, draw_views(50, 4, 2, 10).scale)


def test_mosaic_closes_for_the_last_fifth_of_the_epochs() -> None:
    assert any(draw_views(50, 0, e, 10).mosaic.any() for e in range(8))
    assert not draw_views(50, 0, 8, 10).mosaic.any() and not draw_views(50, 0, 9, 10).mosaic.any()
    assert not draw_views(50, 0, 0, 1).mosaic.any()  # a one-epoch stage (QAT) trains on whole images


@pytest.mark.parametrize("factor,anchor", [(0.75, (0.5, 0.5)), (1.3, (0.2, 0.7)), (1.0, (0.0, 0.0))])
def test_zoom_moves_the_box_with_the_pixels(factor: float, anchor: tuple[float, float]) -> None:
    x, boxes, labels = _scene((20, 24, 40, 44))
    out, b, lab = zoom(x, boxes, labels, factor, anchor, PAD)
    assert out.shape == x.shape and len(b) == 1 and lab.tolist() == [1]
    assert np.allclose(b[0, 2] - b[0, 0], 20 * round(SIZE * factor) / SIZE, atol=0.01)
    assert _white_inside(out, b[0]) > 0.9


def test_zoom_in_drops_a_box_cut_to_a_sliver() -> None:
    x, boxes, labels = _scene((0, 0, 10, 10))
    _, b, lab = zoom(x, boxes, labels, 1.33, (1.0, 1.0), PAD)  # the top-left corner leaves the view
    assert len(b) == 0 and len(lab) == 0


def test_mosaic_keeps_each_tiles_boxes_where_its_pixels_land() -> None:
    tiles = [_scene((4 + 8 * i, 4, 20 + 8 * i, 20)) for i in range(4)]
    x = torch.stack([t[0] for t in tiles])
    out, b, lab = mosaic(x, [t[1] for t in tiles], [t[2] + i for i, t in enumerate(tiles)], [0, 1, 2, 3],
                         (1.0, 1.0), PAD)
    assert out.shape == (3, SIZE, SIZE) and len(b) >= 1
    for box in b:
        assert _white_inside(out, box) > 0.9
    assert set(lab.tolist()) <= {1, 2, 3, 4}


def test_flip_mirrors_the_box() -> None:
    x, boxes, _ = _scene((10, 5, 20, 15))
    out, b = flip(x, boxes)
    assert b.tolist() == [[44, 5, 54, 15]] and _white_inside(out, b[0]) > 0.9


def test_a_batch_keeps_its_shape_range_and_labels() -> None:
    scenes = [_scene((8 * i, 8, 8 * i + 24, 40)) for i in range(6)]
    x = torch.stack([s[0] for s in scenes])
    aug = DetectionAugment([0.0] * 3, [1.0] * 3)
    views = draw_views(6, 0, 0, 10)
    xb, boxes, labels = aug(x, [s[1] for s in scenes], [s[2] for s in scenes], [0, 1, 2, 3, 4, 5], views)
    assert xb.shape == (6, 3, SIZE, SIZE) and float(xb.min()) >= 0 and float(xb.max()) <= 1
    assert all(len(b) == len(lab) and b.shape[1:] == (4,) for b, lab in zip(boxes, labels))
    again = aug(x, [s[1] for s in scenes], [s[2] for s in scenes], [0, 1, 2, 3, 4, 5], views)
    assert torch.equal(xb, again[0])
