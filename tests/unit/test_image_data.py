"""Image data: readers, layouts, masks, channel axis, and clear errors naming the bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from biodl.config import DataConfig
from biodl.data.image.io import decode_base64_image, encode_png_base64, read_image, read_mask
from biodl.data.image.modality import ImageModality
from biodl.errors import ConfigError, DataError


def modality(**kw: object) -> ImageModality:
    image = {k: kw.pop(k) for k in list(kw) if k not in ("task", "target_columns", "split")}
    return ImageModality(DataConfig.model_validate({"type": "image", "image": image, **kw}))


def save_png(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture
def class_folders(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for cls in ("benign", "malignant"):
        for i in range(3):
            save_png(tmp_path / "imgs" / cls / f"{i}.png", rng.integers(0, 255, (12, 10), dtype=np.uint8))
    return tmp_path / "imgs"


@pytest.fixture
def seg_folders(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(1)
    for i in range(3):
        save_png(tmp_path / "images" / f"s{i}.png", rng.integers(0, 255, (20, 24, 3), dtype=np.uint8))
        mask = np.zeros((20, 24), np.uint8)
        mask[5:10, 6:12] = 255
        save_png(tmp_path / "masks" / f"s{i}_mask.png", mask)
    return tmp_path / "images", tmp_path / "masks"


def test_readers_are_channel_first(tmp_path: Path) -> None:
    rgb = np.zeros((8, 9, 3), np.uint8)
    rgb[..., 1] = 255
    img = read_image(save_png(tmp_path / "a.png", rgb))
    assert img.shape == (3, 8, 9) and img.dtype == np.float32 and img[1].max() == 1.0
    Image.fromarray(rgb).save(tmp_path / "a.jpg")
    assert read_image(tmp_path / "a.jpg").shape == (3, 8, 9)
    stack = np.zeros((5, 16, 16), np.uint16)
    stack[4] = 65535
    tifffile.imwrite(tmp_path / "c.tif", stack)
    with pytest.raises(DataError, match=r"c.tif: holds 5 pages of unknown meaning .*--data-type volume"):
        read_image(tmp_path / "c.tif")  # pages without metadata are never silently channels
    t = read_image(tmp_path / "c.tif", channel_axis="first")
    assert t.shape == (5, 16, 16) and t[4].max() == 1.0
    tifffile.imwrite(tmp_path / "cyx.tif", stack, imagej=True, metadata={"axes": "CYX"})
    assert read_image(tmp_path / "cyx.tif").shape == (5, 16, 16)  # ImageJ channels are channels
    tifffile.imwrite(tmp_path / "hwc.tif", np.zeros((16, 16, 2), np.uint8))
    assert read_image(tmp_path / "hwc.tif").shape == (2, 16, 16)
    tifffile.imwrite(tmp_path / "amb.tif", np.zeros((3, 8, 4), np.uint8))
    with pytest.raises(DataError, match=r"amb.tif: cannot tell the channel axis.*channel_axis"):
        read_image(tmp_path / "amb.tif")
    assert read_image(tmp_path / "amb.tif", channel_axis="last").shape == (4, 3, 8)
    assert read_image(tmp_path / "a.png", channels=1).shape == (1, 8, 9)
    np.save(tmp_path / "d.npy", np.ones((7, 7), np.float32))
    assert read_image(tmp_path / "d.npy").shape == (1, 7, 7)


def test_base64_round_trip() -> None:
    arr = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 3).astype(np.uint8)
    img = decode_base64_image("data:image/png;base64," + encode_png_base64(arr), name="input 0")
    assert img.shape == (1, 8, 8) and np.allclose(img[0] * 255, arr)
    with pytest.raises(DataError, match="input 3: not valid base64"):
        decode_base64_image("%%%", name="input 3")


def test_class_folders(class_folders: Path) -> None:
    m = modality(task="classification")
    data = m.load([str(class_folders)])
    assert data.X.shape == (6, 1, 12, 10)
    assert data.targets is not None and data.targets.classes == ["benign", "malignant"]
    assert list(data.ids[:2]) == ["benign/0.png", "benign/1.png"]
    m.fit(data.X)
    assert abs(float(m.transform(data.X).mean())) < 1e-4


def test_empty_class_folder_names_the_folder(class_folders: Path) -> None:
    (class_folders / "normal").mkdir()
    with pytest.raises(DataError, match=r"normal.*no image files"):
        modality(task="classification").load([str(class_folders)])


def test_corrupt_image_names_the_file(class_folders: Path) -> None:
    (class_folders / "benign" / "9.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DataError, match=r"9\.png: cannot read the image"):
        modality(task="classification").load([str(class_folders)])
    bad_tif = class_folders / "benign" / "8.tif"
    bad_tif.write_bytes(b"II*\x00garbage")
    (class_folders / "benign" / "9.png").unlink()
    with pytest.raises(DataError, match=r"8\.tif: cannot read the TIFF"):
        modality(task="classification").load([str(class_folders)])


def test_size_mismatch_and_resize(class_folders: Path) -> None:
    save_png(class_folders / "benign" / "big.png", np.zeros((30, 30), np.uint8))
    with pytest.raises(DataError, match=r"big\.png: image is 30×30.*--image-size"):
        modality(task="classification").load([str(class_folders)])
    data = modality(task="classification", size=[16]).load([str(class_folders)])
    assert data.X.shape[1:] == (1, 16, 16)


def test_channel_count_differs_from_model(class_folders: Path, tmp_path: Path) -> None:
    m = modality(task="classification")
    m.fit(m.load([str(class_folders)]).X)
    rgb = save_png(tmp_path / "new" / "x" / "rgb.png", np.zeros((12, 10, 3), np.uint8))
    save_png(tmp_path / "new" / "y" / "ok.png", np.zeros((12, 10), np.uint8))
    with pytest.raises(DataError, match=rf"{rgb.name}: has 3 channel\(s\) but the model takes 1.*--channels"):
        m.load([str(tmp_path / "new")], require_targets=False)


def test_image_smaller_than_model_input(class_folders: Path, tmp_path: Path) -> None:
    m = modality(task="classification", small_images="error")
    m.fit(m.load([str(class_folders)]).X)
    small = save_png(tmp_path / "small" / "a" / "tiny.png", np.zeros((6, 6), np.uint8))
    save_png(tmp_path / "small" / "b" / "tiny2.png", np.zeros((12, 10), np.uint8))
    with pytest.raises(DataError, match=rf"{small.name}: image is 6×6, smaller than the model input 12×10"):
        m.load([str(tmp_path / "small")], require_targets=False)
    m.cfg.image.small_images = "pad"
    assert m.load([str(tmp_path / "small")], require_targets=False).X.shape[1:] == (1, 12, 10)


def test_path_table_multilabel(tmp_path: Path) -> None:
    rows = []
    for i in range(4):
        save_png(tmp_path / "t" / f"{i}.png", np.full((8, 8), i * 40, np.uint8))
        rows.append(f"t/{i}.png,{i % 2},{int(i > 1)}")
    (tmp_path / "labels.csv").write_text("path,a,b\n" + "\n".join(rows) + "\n")
    m = ImageModality(DataConfig.model_validate({"type": "image", "task": "multilabel", "target_columns": ["a", "b"]}))
    data = m.load([str(tmp_path / "labels.csv")])
    assert data.targets is not None and data.targets.y.shape == (4, 2) and data.X.shape == (4, 1, 8, 8)
    (tmp_path / "bad.csv").write_text("path,a,b\nt/missing.png,0,1\n")
    with pytest.raises(DataError, match=r"missing\.png: image file not found"):
        m.load([str(tmp_path / "bad.csv")])


def test_medmnist_npz_keeps_its_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {}
    for part, n in (("train", 10), ("val", 4), ("test", 3)):
        arrays[f"{part}_images"] = rng.integers(0, 255, (n, 28, 28), dtype=np.uint8)
        arrays[f"{part}_labels"] = rng.integers(0, 2, (n, 1))
        arrays[f"{part}_labels"][:2] = [[0], [1]]
    np.savez(tmp_path / "m.npz", **arrays)
    data = modality(task="classification").load([str(tmp_path / "m.npz")])
    assert data.X.shape == (17, 1, 28, 28) and data.parts is not None
    from biodl.data.splits import make_split

    split = make_split(17, (0.6, 0.1, 0.3), "auto", 0, parts=data.parts)
    assert (len(split.train), len(split.val), len(split.test)) == (10, 4, 3) and split.method == "predefined"
    # a saved model (classes known) evaluating the full file scores its test part only
    assert len(modality(task="classification").load([str(tmp_path / "m.npz")], classes=["0", "1"])) == 3
    assert len(modality(task="classification", npz_parts=["val"]).load([str(tmp_path / "m.npz")])) == 4
    with pytest.raises(DataError, match="no test_images"):
        np.savez(tmp_path / "tv.npz", train_images=arrays["train_images"], train_labels=arrays["train_labels"])
        modality(task="classification", npz_parts=["test"]).load([str(tmp_path / "tv.npz")])


def test_segmentation_pairs_masks(seg_folders: tuple[Path, Path]) -> None:
    images, masks = seg_folders
    m = modality(task="segmentation", mask_dir=str(masks))
    data = m.load([str(images)])
    assert data.X.shape == (3, 3, 20, 24)
    assert data.targets is not None and data.targets.kind == "segmentation"
    assert data.targets.classes == ["0", "255"] and data.targets.num_outputs == 1
    assert data.targets.y.shape == (3, 20, 24) and data.targets.y[0, 6, 7] == 1 and data.targets.y[0, 0, 0] == 0


def test_mask_size_differs_names_the_mask(seg_folders: tuple[Path, Path]) -> None:
    images, masks = seg_folders
    save_png(masks / "s1_mask.png", np.zeros((10, 10), np.uint8))
    with pytest.raises(DataError, match=r"s1_mask\.png: mask is 10×10 but its image .*s1\.png is 20×24"):
        modality(task="segmentation", mask_dir=str(masks)).load([str(images)])


def test_unexpected_mask_values(seg_folders: tuple[Path, Path]) -> None:
    images, masks = seg_folders
    odd = np.zeros((20, 24), np.uint8)
    odd[0, :3] = [7, 128, 255]
    save_png(masks / "s2_mask.png", odd)
    with pytest.raises(DataError, match=r"s2_mask\.png: masks have more than two values.*--mask-threshold"):
        modality(task="segmentation", mask_dir=str(masks)).load([str(images)])
    # a threshold makes them binary
    data = modality(task="segmentation", mask_dir=str(masks), mask_threshold=100).load([str(images)])
    assert data.targets is not None and data.targets.y[2, 0, :3].tolist() == [0, 1, 1]
    # a trained model's classes: a value it never saw is an error naming the file
    m = modality(task="segmentation", mask_dir=str(masks))
    with pytest.raises(DataError, match=r"s2_mask\.png: mask has unexpected value\(s\) 7, 128"):
        m.load([str(images)], classes=["0", "255"])


def test_missing_mask_names_the_image(seg_folders: tuple[Path, Path]) -> None:
    images, masks = seg_folders
    (masks / "s0_mask.png").unlink()
    with pytest.raises(DataError, match=r"s0\.png: no mask with the same name"):
        modality(task="segmentation", mask_dir=str(masks)).load([str(images)])


def test_segmentation_images_of_different_sizes_are_padded(tmp_path: Path) -> None:
    save_png(tmp_path / "i" / "a.png", np.zeros((10, 12), np.uint8))
    save_png(tmp_path / "i" / "b.png", np.zeros((14, 8), np.uint8))
    for n, shape in (("a", (10, 12)), ("b", (14, 8))):
        mask = np.zeros(shape, np.uint8)
        mask[2:4, 2:4] = 1
        save_png(tmp_path / "m" / f"{n}.png", mask)
    m = modality(task="segmentation", mask_dir=str(tmp_path / "m"))
    data = m.load([str(tmp_path / "i")])
    assert data.X.shape == (2, 1, 14, 12)
    assert data.targets is not None and (data.targets.y[0, 10:] == -1).all() and (data.targets.y[1, :, 8:] == -1).all()
    assert m.image_sizes == [(10, 12), (14, 8)]


def test_instance_masks(tmp_path: Path) -> None:
    save_png(tmp_path / "i" / "a.png", np.zeros((16, 16), np.uint8))
    inst = np.zeros((16, 16), np.uint16)
    inst[1:4, 1:4], inst[8:12, 8:12] = 1, 2
    (tmp_path / "m").mkdir()
    tifffile.imwrite(tmp_path / "m" / "a.tif", inst)
    data = modality(task="segmentation", mask_dir=str(tmp_path / "m"), mask_type="instance").load([str(tmp_path / "i")])
    assert data.targets is not None and data.targets.y.max() == 2 and data.targets.num_outputs == 1


def test_segmentation_rejects_resize(seg_folders: tuple[Path, Path]) -> None:
    images, masks = seg_folders
    with pytest.raises(ConfigError, match="input_scale"):
        modality(task="segmentation", mask_dir=str(masks), size=[8, 8]).load([str(images)])


def test_parse_inputs_base64_and_lists(class_folders: Path) -> None:
    m = modality(task="classification")
    m.fit(m.load([str(class_folders)]).X)
    b64 = encode_png_base64(np.zeros((12, 10), np.uint8))
    X = m.parse_inputs([b64, {"image": b64}, np.zeros((12, 10)).tolist()])
    assert X.shape == (3, 1, 12, 10)
    with pytest.raises(DataError, match="input 0: has 3 channel"):
        m.parse_inputs([encode_png_base64(np.zeros((12, 10, 3), np.uint8))])


def test_read_mask_rejects_colour_masks(tmp_path: Path) -> None:
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[0, 0] = [255, 0, 0]
    with pytest.raises(DataError, match=r"c\.png: a mask must have one channel"):
        read_mask(save_png(tmp_path / "c.png", rgb))


def test_config_defaults_and_model_task_checks(seg_folders: tuple[Path, Path]) -> None:
    from biodl.cli.main import _train_config, build_parser
    from biodl.config import ExperimentConfig

    images, masks = seg_folders
    seg = ExperimentConfig.from_dict({"data": {"type": "image", "path": [str(images)], "image": {"mask_dir": str(masks)}}})
    assert seg.data.task == "segmentation" and seg.model.name == "unet"
    cls = ExperimentConfig.from_dict({"data": {"type": "image", "task": "classification"}})
    assert cls.model.name == "cnn"
    with pytest.raises(ConfigError, match="does not do classification"):
        ExperimentConfig.from_dict({"data": {"type": "image", "task": "classification"}, "model": {"name": "unet"}})
    with pytest.raises(ConfigError, match="does not do segmentation"):
        ExperimentConfig.from_dict({"data": {"type": "image", "task": "segmentation"}, "model": {"name": "vgg"}})
    args = build_parser().parse_args(
        ["train", "--data-type", "image", "--data-path", str(images), "--mask-dir", str(masks), "--mask-threshold", "128",
         "--image-size", "32", "--channels", "1", "--augment", "--augment-strategy", "filter", "--split", "ordered"]
    )  # fmt: skip
    cfg = _train_config(args)
    img = cfg.data.image
    assert (img.mask_dir, img.mask_threshold, img.size, img.channels, img.augment, img.augment_strategy) == (
        str(masks), 128.0, [32, 32], 1, [], "filter"
    )  # fmt: skip
    assert cfg.data.split == "ordered"


def test_ordered_split_keeps_file_order() -> None:
    from biodl.data.splits import make_split

    split = make_split(20, (0.8, 0.2, 0.0), "ordered", 0)
    assert split.train.tolist() == list(range(16)) and split.val.tolist() == [16, 17, 18, 19] and len(split.test) == 0
    with pytest.raises(DataError, match="predefined"):
        make_split(20, (0.8, 0.2, 0.0), "predefined", 0)
