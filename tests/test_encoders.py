"""The offline encoders are really pretrained; the online-only ones fail fast and helpfully."""
import time

import numpy as np
import pytest
import torch
from skimage import data

import config
from cvtasks.models import (OfflineError, create_image_encoder, create_text_encoder,
                            list_image_encoders, list_text_encoders)
from cvtasks.models.image_encoders import Preprocessing, load_by_position
from cvtasks.models.online import host_reachable


def test_registry_matches_config():
    assert list_image_encoders() == list(config.IMAGE_ENCODERS)
    assert list_text_encoders() == list(config.TEXT_ENCODERS)


@pytest.fixture(scope="module")
def lite0():
    return create_image_encoder("efficientnet_lite0")


def _top1(encoder, image):
    with torch.no_grad():
        return int(encoder(encoder.preprocessing(image).unsqueeze(0)).argmax())


def test_efficientnet_lite0_is_imagenet_pretrained(lite0):
    assert _top1(lite0, data.coffee()) == 967           # espresso
    assert 281 <= _top1(lite0, data.chelsea()) <= 285   # a cat class


def test_image_encoder_exposes_embedding_and_preprocessing(lite0):
    prep = lite0.preprocessing
    assert isinstance(prep, Preprocessing) and prep.size == 224 and len(prep.mean) == len(prep.std) == 3
    # any mode and size in: grey, RGBA and a small RGB image
    images = [data.camera(), np.dstack([data.coffee(), np.full(data.coffee().shape[:2], 255, np.uint8)]),
              data.chelsea()[:50, :80]]
    emb = lite0.embed_images(images, progress=False)
    assert emb.shape == (3, lite0.embed_dim) == (3, 1280) and emb.dtype == np.float32
    with torch.no_grad():
        x = prep(data.coffee()).unsqueeze(0)
        logits_from_embedding = lite0.backbone.get_classifier()(lite0.embed(x))
        assert torch.allclose(logits_from_embedding, lite0(x), atol=1e-4)


def test_load_by_position_asserts_shapes():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    good = {"a": torch.ones(2, 3), "b": torch.zeros(2), "c": torch.ones(1, 2), "d": torch.zeros(1)}
    load_by_position(model, good)
    assert torch.equal(model[0].weight, torch.ones(2, 3))
    bad = dict(good, c=torch.ones(2, 2))
    with pytest.raises(ValueError, match="shape mismatch"):
        load_by_position(model, bad)


def test_minilm_is_a_real_sentence_encoder():
    enc = create_text_encoder("all-MiniLM-L6-v2", device="cpu")
    a, b, c = enc.encode(["a dog runs on grass", "a puppy playing in a field", "a red car"])
    assert enc.dim == 384 and a.shape == (384,)
    assert np.isclose(np.linalg.norm(a), 1.0, atol=1e-5)
    assert float(a @ b) > float(a @ c) + 0.2


@pytest.mark.parametrize("factory, name", [(create_image_encoder, "resnet18"),
                                           (create_image_encoder, "resnet50"),
                                           (create_text_encoder, "distilbert-base-uncased")])
def test_online_only_encoders_fail_fast_when_forced_offline(monkeypatch, factory, name):
    monkeypatch.setenv("CVTASKS_OFFLINE", "1")
    with pytest.raises(OfflineError, match="efficientnet_lite0.*all-MiniLM-L6-v2"):
        factory(name)


def test_online_only_encoder_fails_at_once_on_this_network():
    if host_reachable("huggingface.co"):
        pytest.skip("the hub is reachable here: the online path would download for real")
    start = time.monotonic()
    with pytest.raises(OfflineError, match="huggingface.co is unreachable"):
        create_image_encoder("resnet50")
    # bounded by the connect timeout: an unreachable hub must never hang a run
    assert time.monotonic() - start < config.ONLINE_CHECK_TIMEOUT_S + 5


def test_unknown_encoder_names_the_known_ones():
    with pytest.raises(ValueError, match="efficientnet_lite0"):
        create_image_encoder("vgg16")
    with pytest.raises(ValueError, match="all-MiniLM-L6-v2"):
        create_text_encoder("bert-huge")
