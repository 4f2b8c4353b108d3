"""Volume readers: TIFF metadata decides what pages are, NPZ parts, slice folders, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from biodl.config import ExperimentConfig
from biodl.data import DATA_TYPES
from biodl.data.image.io import read_image, tiff_layout
from biodl.data.volume.io import read_stack
from biodl.errors import DataError
from conftest import shared_path


def _modality(**volume: object):
    cfg = ExperimentConfig.from_dict({"data": {"type": "volume", "task": "classification", "volume": volume}})
    return DATA_TYPES["volume"](cfg.data)


def _stack(n: int = 8, h: int = 16, w: int = 16) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (n, h, w), dtype=np.uint8)


def test_tiff_metadata_decides_what_pages_are(tmp_path: Path) -> None:
    s = _stack()
    tifffile.imwrite(tmp_path / "z.tif", s, imagej=True, metadata={"axes": "ZYX", "spacing": 2.5}, resolution=(2.0, 2.0))
    tifffile.imwrite(tmp_path / "t.tif", s, imagej=True, metadata={"axes": "TYX"})
    tifffile.imwrite(tmp_path / "c.tif", s[:3], imagej=True, metadata={"axes": "CYX"})
    tifffile.imwrite(tmp_path / "q.tif", s)  # pages without axis metadata
    z = tiff_layout(tmp_path / "z.tif", "z")
    assert (z.plane_axis, z.planes, z.source, z.spacing) == ("z", 8, "ImageJ metadata", (2.5, 0.5, 0.5))
    assert tiff_layout(tmp_path / "t.tif", "t").plane_axis == "t"
    assert tiff_layout(tmp_path / "c.tif", "c").plane_axis == "c"
    assert tiff_layout(tmp_path / "q.tif", "q").plane_axis == "?"
    # the 2-D reader: a z-stack or time-lapse is never read as channels
    with pytest.raises(
        DataError, match=r"z.tif: holds 8 z-slices \(ImageJ metadata, axes ZYX\), not one 2-D image; .*--data-type volume"
    ):
        read_image(tmp_path / "z.tif")
    with pytest.raises(DataError, match=r"8 time frames .*--data-type volume --time-axis"):
        read_image(tmp_path / "t.tif")
    with pytest.raises(DataError, match=r"8 pages of unknown meaning .*--channel-axis first"):
        read_image(tmp_path / "q.tif")
    assert read_image(tmp_path / "q.tif", channel_axis="first").shape == (8, 16, 16)  # the user says: channels
    assert read_image(tmp_path / "c.tif").shape == (3, 16, 16)  # ImageJ channels are channels
    # the volume reader: planes, with spacing and a note saying what it did
    st = read_stack(tmp_path / "z.tif")
    assert st.array.shape == (1, 8, 16, 16) and st.spacing == (2.5, 0.5, 0.5)
    assert "8 z-slices (ImageJ metadata" in st.note
    assert np.allclose(st.array[0] * 255, s)
    q = read_stack(tmp_path / "q.tif")
    assert q.array.shape == (1, 8, 16, 16) and "8 pages read as planes (no metadata)" in q.note


def test_pages_written_one_by_one_are_all_read(tmp_path: Path) -> None:
    s = _stack(5)
    with tifffile.TiffWriter(tmp_path / "p.tif") as w:
        for plane in s:
            w.write(plane)  # 5 separate series: tifffile.imread would return the first page only
    assert np.allclose(read_stack(tmp_path / "p.tif").array[0] * 255, s)
    with pytest.raises(DataError, match="5 pages"):
        read_image(tmp_path / "p.tif")


def test_rgb_stack_and_npy_and_slice_folder(tmp_path: Path) -> None:
    rgb = np.random.default_rng(1).integers(0, 255, (4, 10, 12, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    assert read_stack(tmp_path / "rgb.tif").array.shape == (3, 4, 10, 12)
    np.save(tmp_path / "v.npy", rgb[..., 0].astype(np.float32))
    assert read_stack(tmp_path / "v.npy").array.shape == (1, 4, 10, 12)
    folder = tmp_path / "slices"
    folder.mkdir()
    for i in (0, 1, 2, 10):  # natural order: 10 after 2
        Image.fromarray(np.full((6, 7), i, np.uint8)).save(folder / f"s{i}.png")
    vol = read_stack(folder).array
    assert vol.shape == (1, 4, 6, 7) and np.allclose(vol[0, :, 0, 0] * 255, [0, 1, 2, 10])


def test_streamed_resize_and_memory_budget(tmp_path: Path) -> None:
    clip = np.random.default_rng(2).integers(0, 255, (40, 64, 64), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "long.tif", clip, imagej=True, metadata={"axes": "TYX"})
    budget = 40 * 64 * 64 * 4 / 1024**3 / 2  # half of what the clip needs
    with pytest.raises(
        DataError, match=r"long.tif: 40 time frames of 64×64 need .* GiB as float32, more than data.volume.max_gib"
    ):
        read_stack(tmp_path / "long.tif", max_gib=budget)
    small = read_stack(tmp_path / "long.tif", size=(20, 16, 16), max_gib=budget)  # frames streamed, each resized
    assert small.array.shape == (1, 20, 16, 16)
    assert abs(float(small.array.mean()) - float(clip.mean() / 255)) < 0.01


def test_mixed_shapes_need_a_resize_policy(tmp_path: Path) -> None:
    for name, n in (("a", 8), ("b", 6)):
        (tmp_path / "cls" / name).mkdir(parents=True)
        for k in range(2):
            tifffile.imwrite(tmp_path / "cls" / name / f"{k}.tif", _stack(n), imagej=True, metadata={"axes": "ZYX"})
    mod = _modality()
    with pytest.raises(DataError, match=r"b/0.tif: volume is 6×16×16 but .*a/0.tif is 8×16×16; set data.volume.size"):
        mod.load([str(tmp_path / "cls")])
    data = _modality(size=[8, 12, 12]).load([str(tmp_path / "cls")])
    assert data.X.shape == (4, 1, 8, 12, 12) and data.targets is not None and data.targets.classes == ["a", "b"]
    assert any("z-slices" in n for n in data.summary["planes read as"])


def test_medmnist_npz_parts_for_training_and_evaluation(tmp_path: Path) -> None:
    npz = shared_path("volumes", "adrenalmnist3d", "adrenalmnist3d_28_train_val.npz")
    with np.load(npz) as z:
        np.savez(tmp_path / "small.npz", train_images=z["train_images"][:20], train_labels=z["train_labels"][:20],
                 val_images=z["val_images"][:10], val_labels=z["val_labels"][:10])  # fmt: skip
        np.savez(tmp_path / "test_only.npz", test_images=z["val_images"][:7], test_labels=z["val_labels"][:7])
    mod = _modality()
    data = mod.load([str(tmp_path / "small.npz")])
    assert data.X.shape == (30, 1, 28, 28, 28) and data.X.max() == 1.0
    assert data.summary["predefined split"] == {"train": 20, "val": 10, "test": 0}
    # a saved model (classes known) reads the most held-out part: test, else val
    assert mod.load([str(tmp_path / "test_only.npz")], classes=["0", "1"]).summary["NPZ arrays read"] == "test_images"
    held = mod.load([str(tmp_path / "small.npz")], classes=["0", "1"])
    assert len(held) == 10 and held.summary["NPZ arrays read"] == "val_images"


def test_per_frame_labels_of_clips(tmp_path: Path) -> None:
    clips = np.random.default_rng(3).random((6, 5, 8, 8)).astype(np.float32)
    labels = (np.arange(30).reshape(6, 5) % 2).astype(np.uint8)
    np.savez(tmp_path / "clips.npz", images=clips, labels=labels)
    cfg = ExperimentConfig.from_dict({"data": {"type": "volume", "task": "multilabel", "volume": {"time_axis": True}}})
    assert cfg.model.name == "timelapse"
    data = DATA_TYPES["volume"](cfg.data).load([str(tmp_path / "clips.npz")])
    assert data.targets is not None and data.targets.names == [f"frame_{i}" for i in range(5)]
    assert data.summary["axis 1"] == "time"


def test_not_a_stack(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "x.png")
    with pytest.raises(DataError, match=r"x\.png: a single 2-D image, not a stack"):
        read_stack(tmp_path / "x.png")
    with pytest.raises(DataError, match=r"x\.png: not a stack"):
        _modality().load([str(tmp_path / "x.png")])
    tifffile.imwrite(tmp_path / "v.tif", _stack(), imagej=True, metadata={"axes": "ZYX"})
    with pytest.raises(DataError, match=r"v\.tif: stacks without labels"):
        _modality().load([str(tmp_path / "v.tif")])
    assert _modality().load([str(tmp_path / "v.tif")], require_targets=False).X.shape == (1, 1, 8, 16, 16)


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from biodl.cli.main import main

    for name in ("a", "b"):
        (tmp_path / "cls" / name).mkdir(parents=True)
        tifffile.imwrite(tmp_path / "cls" / name / "s.tif", _stack(), imagej=True, metadata={"axes": "ZYX"})
    rc = main(["train", "--data-type", "image", "--data-path", str(tmp_path / "cls"), "--output-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "holds 8 z-slices" in err[0] and "--data-type volume" in err[0]
    tifffile.imwrite(tmp_path / "cls" / "b" / "t.tif", _stack(4), imagej=True, metadata={"axes": "ZYX"})
    rc = main(["train", "--data-type", "volume", "--data-path", str(tmp_path / "cls"), "--output-dir", str(tmp_path / "r2")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "volume is 4×16×16" in err[0] and "--volume-size" in err[0]
