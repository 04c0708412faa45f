"""Expanding detect sources, and decoding the images people actually have."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from ssdcli.data.images import image_size_hw, load_image, reduction_factor
from ssdcli.detect.sources import SourceItem, expand_sources, iter_frames
from ssdcli.errors import DataError


def _jpeg(
    path: Path, height: int = 40, width: int = 60, exif_orientation: int | None = None
) -> Path:
    image = np.zeros((height, width, 3), np.uint8)
    image[: height // 4, : width // 4] = (255, 0, 0)  # red block at the top-left corner
    pil = Image.fromarray(image)
    if exif_orientation is None:
        pil.save(path, quality=95)
    else:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        pil.save(path, quality=95, exif=exif.tobytes())
    return path


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    (tmp_path / "a" / "sub").mkdir(parents=True)
    (tmp_path / "a" / ".hidden").mkdir()
    for rel in ("a/x.jpg", "a/sub/y.png", "a/.hidden/z.jpg", "b.jpg"):
        Image.new("RGB", (8, 8)).save(tmp_path / rel)
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "a" / "clip.mp4").write_bytes(b"")
    return tmp_path


def test_folder_is_recursive_skips_hidden_and_other_files(tree: Path) -> None:
    items, problems = expand_sources([str(tree / "a")])
    assert problems == []
    assert [(i.rel_name, i.kind) for i in items] == [
        ("clip.mp4", "video"),
        ("sub/y.png", "image"),
        ("x.jpg", "image"),
    ]


def test_files_globs_missing_and_duplicates(tree: Path) -> None:
    sources = [
        str(tree / "b.jpg"),
        str(tree / "a" / "*.jpg"),
        str(tree / "nope.jpg"),
        str(tree / "b.jpg"),
    ]
    items, problems = expand_sources(sources)
    assert [i.path.name for i in items] == ["b.jpg", "x.jpg"]
    assert len(problems) == 1 and "nope.jpg" in str(problems[0])
    assert "no such file" in str(problems[0])


def test_recursive_glob_and_empty_pattern(tree: Path) -> None:
    items, problems = expand_sources([str(tree / "**" / "*.png"), str(tree / "*.gif")])
    assert [i.path.name for i in items] == ["y.png"]
    assert len(problems) == 1 and "matches no images" in problems[0].message


def test_dash_reads_paths_from_stdin(tree: Path) -> None:
    stdin = io.StringIO(
        f"{tree / 'b.jpg'}\n\n# a comment\n{tree / 'a' / 'x.jpg'}\n{tree / 'gone.png'}\n"
    )
    items, problems = expand_sources(["-"], stdin)
    assert [i.path.name for i in items] == ["b.jpg", "x.jpg"]
    assert [p.source for p in problems] == [str(tree / "gone.png")]


def test_empty_folder_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    items, problems = expand_sources([str(tmp_path / "empty")])
    assert items == [] and "holds no images" in problems[0].message


def test_reduction_factor_hand_values() -> None:
    assert reduction_factor((3000, 4000), max_side=4096) == 1
    assert reduction_factor((3000, 8000), max_side=4096) == 2
    assert reduction_factor((3000, 16000), max_side=4096) == 4
    assert reduction_factor((3000, 16385), max_side=4096) == 8
    assert reduction_factor((90000, 90000), max_side=4096) == 8


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # Orientation 6: the stored image is shown rotated 90 degrees clockwise.
    path = _jpeg(tmp_path / "rot.jpg", 40, 60, exif_orientation=6)
    image, size_hw = load_image(path)
    assert image.shape == (60, 40, 3) and size_hw == (60, 40)
    # The red top-left block of the stored image ends up at the top-right.
    assert image[3, 36, 0] > 200 and image[3, 36, 2] < 60
    assert image[3, 3, 0] < 60
    assert image_size_hw(path) == (60, 40)


def test_grayscale_rgba_16bit_and_palette_become_rgb_uint8(tmp_path: Path) -> None:
    gray = np.full((10, 12), 77, np.uint8)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    sixteen = np.full((10, 12, 3), 40000, np.uint16)  # BGR for OpenCV
    sixteen[..., 2] = 65535
    cv2.imwrite(str(tmp_path / "deep.png"), sixteen)
    Image.fromarray(gray).convert("P").save(tmp_path / "pal.png")
    expected = {
        "gray.png": (77, 77, 77),
        "rgba.png": (200, 0, 0),
        "deep.png": (255, 40000 >> 8, 40000 >> 8),  # 16 bits scaled to 8
        "pal.png": (77, 77, 77),
    }
    for name, rgb in expected.items():
        image, size_hw = load_image(tmp_path / name)
        assert image.dtype == np.uint8 and image.shape == (10, 12, 3), name
        assert size_hw == (10, 12)
        assert tuple(int(v) for v in image[5, 5]) == pytest.approx(rgb, abs=1), name


def test_large_image_is_decoded_reduced_with_original_size(tmp_path: Path) -> None:
    path = _jpeg(tmp_path / "big.jpg", 300, 450, exif_orientation=6)
    image, size_hw = load_image(path, max_side=100)
    # 450 / 100 -> factor 8 (at most 8): JPEG DCT scaling rounds up, ceil(300/8)=38, ceil(450/8)=57.
    assert size_hw == (450, 300)
    assert image.shape == (57, 38, 3)
    assert image[1, 36, 0] > 150  # orientation applied in the reduced decode too


def test_unreadable_image_raises_data_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError, match="bad.jpg"):
        list(iter_frames(SourceItem(bad, "image", "bad.jpg")))


def _write_video(path: Path, frames: int) -> bool:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 24))
    if not writer.isOpened():
        return False
    for i in range(frames):
        writer.write(np.full((24, 32, 3), i * 20, np.uint8))
    writer.release()
    return path.stat().st_size > 0


def test_video_every_kth_frame(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    if not _write_video(path, 10):
        pytest.skip("this OpenCV build cannot write MJPG video")
    frames = list(iter_frames(SourceItem(path, "video", "clip.avi"), stride=3))
    assert [f.index for f in frames] == [0, 3, 6, 9]
    assert frames[0].image_rgb.shape == (24, 32, 3) and frames[1].size_hw == (24, 32)
    assert frames[1].name.endswith("clip.avi#3")
    assert abs(int(frames[1].image_rgb.mean()) - 60) <= 3  # frame 3 was filled with 60


def test_unopenable_video_raises(tmp_path: Path) -> None:
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(DataError, match="broken.mp4"):
        list(iter_frames(SourceItem(path, "video", "broken.mp4")))
