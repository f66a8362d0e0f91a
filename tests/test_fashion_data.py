"""Fashion-MNIST IDX parsing and the DeepFashion loaders, on fixtures in their own formats."""
import gzip
import io

import numpy as np
import pytest
import torch
from PIL import Image

import config
from cvtasks.data import fashion_mnist as fm
from cvtasks.data.deepfashion import (CATEGORIES, DeepFashionDataset, decode_image, export_class_folders,
                                      load_hf_deepfashion, read_parquet_rows)


def write_idx(path, array, type_code=0x08, compress=True):
    """An IDX file as the original Fashion-MNIST files are written: big-endian header + data."""
    array = np.asarray(array)
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    (gzip.open if compress else open)(path, "wb").write(data)


@pytest.fixture
def idx_dir(tmp_path):
    rng = np.random.default_rng(0)
    images = {"train": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
              "test": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8)}
    labels = {"train": np.arange(20, dtype=np.uint8) % 10, "test": np.arange(10, dtype=np.uint8)}
    for split, (img_name, lab_name) in fm.FILES.items():
        write_idx(tmp_path / f"{img_name}.gz", images[split])
        write_idx(tmp_path / lab_name, labels[split], compress=False)  # plain IDX works too
    return tmp_path, images, labels


def test_idx_round_trip(idx_dir):
    path, images, labels = idx_dir
    data = fm.load_fashion_mnist(path)
    np.testing.assert_array_equal(data.train_images, images["train"])
    np.testing.assert_array_equal(data.test_labels, labels["test"])
    assert data.train_labels.dtype == np.int64 and data.classes[6] == "Shirt"


def test_idx_big_endian_ints(tmp_path):
    write_idx(tmp_path / "x.gz", np.array([[1, 256], [70000, -3]], dtype=np.int32), type_code=0x0C)
    np.testing.assert_array_equal(fm.read_idx(tmp_path / "x.gz"), [[1, 256], [70000, -3]])


def test_idx_errors_name_the_problem(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x00\x08\x01\x00\x00\x00\x02ab")
    with pytest.raises(fm.IdxError, match="not an IDX file"):
        fm.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05ab")
    with pytest.raises(fm.IdxError, match="needs 5"):
        fm.read_idx(tmp_path / "short")
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        fm.load_split(tmp_path, "train")


def test_labels_out_of_range_are_refused(idx_dir):
    path, images, labels = idx_dir
    write_idx(path / fm.FILES["test"][1], np.full(10, 12, np.uint8), compress=False)
    with pytest.raises(fm.IdxError, match="labels outside"):
        fm.load_split(path, "test")


@pytest.mark.skipif(not config.FASHION_MNIST_DIR.exists(), reason="Debian dataset-fashion-mnist not installed")
def test_real_fashion_mnist_files():
    data = fm.load_fashion_mnist(config.FASHION_MNIST_DIR)
    assert data.train_images.shape == (60000, 28, 28) and data.test_images.shape == (10000, 28, 28)
    assert (np.bincount(data.train_labels) == 6000).all() and (np.bincount(data.test_labels) == 1000).all()


# --- DeepFashion ------------------------------------------------------------------------------
def jpeg_bytes(colour, size=(24, 32)):
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture
def hf_rows():
    """Rows as the hub's parquet shards hold them (pyarrow to_pylist / datasets with decode=False):
    the Image feature is a {"bytes", "path"} struct, cloth_type the category name."""
    colours = {"Denim": (20, 40, 200), "Dresses": (200, 30, 30), "Shorts": (30, 200, 30)}
    return [{"images": {"bytes": jpeg_bytes(colours[c]), "path": f"{c}_{i}.jpg"}, "cloth_type": c,
             "gender": "WOMEN", "pose": "front", "pid": f"id_{i:08d}", "caption": f"a {c.lower()}"}
            for i, c in enumerate(["Denim", "Dresses", "Shorts"] * 4)]


def test_deepfashion_has_17_categories():
    assert len(CATEGORIES) == 17 and len(set(CATEGORIES)) == 17


def test_hf_rows_load(hf_rows):
    ds = DeepFashionDataset.from_rows(hf_rows)
    assert len(ds) == 12 and ds.classes == list(CATEGORIES)
    assert [CATEGORIES[y] for y in ds.labels[:3]] == ["Denim", "Dresses", "Shorts"]
    image, label = ds[1]
    assert image.size == (24, 32) and image.getpixel((5, 5))[0] > 150 and CATEGORIES[label] == "Dresses"


def test_hf_rows_with_decoded_images_and_class_indices(hf_rows):
    rows = [{"images": decode_image(r["images"]), "cloth_type": CATEGORIES.index(r["cloth_type"])} for r in hf_rows]
    ds = DeepFashionDataset.from_rows(rows)
    assert ds.labels == DeepFashionDataset.from_rows(hf_rows).labels


def test_hf_rows_bad_input_is_named(hf_rows):
    with pytest.raises(ValueError, match="'Hats' is not a known category"):
        DeepFashionDataset.from_rows([{**hf_rows[0], "cloth_type": "Hats"}])
    with pytest.raises(KeyError, match="no 'images' column"):
        DeepFashionDataset.from_rows([{"cloth_type": "Denim"}])


def test_class_folders_match_the_hub_rows(hf_rows, tmp_path):
    root = export_class_folders(hf_rows, tmp_path / "deepfashion")
    (root / "Denim" / "notes.txt").write_text("not an image")
    ds = DeepFashionDataset.from_folder(root)
    assert ds.classes == ["Denim", "Dresses", "Shorts"] and len(ds) == 12
    assert len(ds.skipped) == 1 and "not an image" in ds.skipped[0][1]
    assert sorted(ds.labels) == [0] * 4 + [1] * 4 + [2] * 4
    assert ds[ds.labels.index(2)][0].getpixel((5, 5))[1] > 150   # Shorts are green


def test_parquet_shards(hf_rows, tmp_path):
    import pandas as pd

    pd.DataFrame(hf_rows).to_parquet(tmp_path / "train-00000-of-00001.parquet")
    rows = read_parquet_rows([tmp_path / "train-00000-of-00001.parquet"])
    assert DeepFashionDataset.from_rows(rows).labels == DeepFashionDataset.from_rows(hf_rows).labels


def test_hub_loader_fails_clearly_offline(monkeypatch):
    try:
        import datasets  # noqa: F401
    except ModuleNotFoundError:
        with pytest.raises(ModuleNotFoundError, match="from_folder"):
            load_hf_deepfashion()
        return
    import cvtasks.models.online as online
    monkeypatch.setattr(online, "host_reachable", lambda *a, **k: False)
    with pytest.raises(ConnectionError, match="from_folder"):
        load_hf_deepfashion()


@pytest.mark.slow
def test_finetune_on_the_fixture(hf_rows):
    from cvtasks.deepfashion_finetune import finetune

    ds = DeepFashionDataset.from_rows(hf_rows, classes=["Denim", "Dresses", "Shorts"])
    small = config.FinetuneSettings(epochs=2, batch_size=4, lr=1e-2, image_size=64, val_fraction=0.25)
    model, history = finetune(ds, small, encoder="efficientnet_lite0", device="cpu")
    assert len(history.epochs) == 2 and 0 <= history.best_score <= 1
    trainable = {n.split(".")[1] for n, p in model.encoder.named_parameters() if p.requires_grad}
    assert trainable == {"conv_head", "bn2"}
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 3)


def test_resnet18_offline_names_the_alternative(monkeypatch):
    from cvtasks.models import OfflineError, create_image_encoder

    monkeypatch.setenv("CVTASKS_OFFLINE", "1")
    with pytest.raises(OfflineError, match="efficientnet_lite0"):
        create_image_encoder("resnet18")


def test_auto_encoder_falls_back_offline(monkeypatch, capsys):
    from cvtasks import deepfashion_finetune

    monkeypatch.setenv("CVTASKS_OFFLINE", "1")
    monkeypatch.setattr(deepfashion_finetune, "create_image_encoder",
                        lambda name: (_ for _ in ()).throw(__import__("cvtasks.models", fromlist=["x"]).OfflineError("no hub"))
                        if name == "resnet18" else name)
    assert deepfashion_finetune.create_encoder("auto") == "efficientnet_lite0"
    assert "fine-tuning efficientnet_lite0 instead" in capsys.readouterr().out
