"""PST(init=...): an identity start by default (the accuracy study's candidate c), the authors' initialisation on
request (YAML 4th arg, ``PST_INIT``, ``default_layer_init``)."""

from __future__ import annotations

import os

import pytest
import torch

from pst_yolo.nn.checks import PSTEnvironmentError
from pst_yolo.nn.pst import DEFAULT_INIT, ENV_INIT, PST, default_layer_init, new_layer_init

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_identity_init_makes_the_layer_its_convolutional_path():
    torch.manual_seed(0)
    layer = PST(64, 96, 64, n=2, e=0.5, k=4, init="identity").eval()
    x, upper = torch.rand(2, 64, 10, 9), torch.rand(2, 96, 5, 5)
    with torch.no_grad():
        a = layer.cv1(x)
        expected = layer.cv2(torch.cat([a, a, a], 1))  # every block passes its input through unchanged
        torch.testing.assert_close(layer([x, upper]), expected, rtol=0, atol=0)


def test_default_init_is_identity_and_state_dicts_are_interchangeable(monkeypatch):
    monkeypatch.delenv(ENV_INIT, raising=False)
    torch.manual_seed(0)
    default = PST(64, 96, 64, n=1, e=0.5)
    authors = PST(64, 96, 64, n=1, e=0.5, init="authors")
    assert default.init == "identity" and authors.init == "authors"
    for block_layer, scale in ((default, 0), (authors, 32)):  # 32 channels of BatchNorm scale: zeros, or 1 each
        branch_ends = (block_layer.attnlayer_0.attn.proj.bn.weight, block_layer.attnlayer_0.mlp[1].bn.weight)
        assert [float(w.detach().sum()) for w in branch_ends] == [scale, scale]
    default.load_state_dict(authors.state_dict(), strict=True)  # same names and shapes: checkpoints are unaffected
    torch.testing.assert_close(default.attnlayer_0.attn.proj.bn.weight, authors.attnlayer_0.attn.proj.bn.weight)
    with pytest.raises(ValueError, match="init must be one of authors, identity"):
        PST(64, 96, 64, init="zeros")


def test_the_default_start_can_be_the_authors_by_variable_or_context(monkeypatch):
    monkeypatch.setenv(ENV_INIT, "authors")
    assert new_layer_init() == "authors" and PST(64, 96, 64).init == "authors"
    assert PST(64, 96, 64, init="identity").init == "identity"  # an explicit init wins
    monkeypatch.setenv(ENV_INIT, "zeros")
    with pytest.raises(PSTEnvironmentError, match="PST_INIT='zeros' is not valid: PST_INIT must be one of authors, "):
        PST(64, 96, 64)
    monkeypatch.delenv(ENV_INIT)
    with default_layer_init("authors"):
        assert PST(64, 96, 64).init == "authors"
        with default_layer_init("identity"):
            assert PST(64, 96, 64).init == "identity"
        assert os.environ[ENV_INIT] == "authors"  # (worker processes started inside inherit it)
    assert ENV_INIT not in os.environ and PST(64, 96, 64).init == DEFAULT_INIT == "identity"
    with pytest.raises(ValueError, match="default_layer_init: init must be one of authors, identity"):
        with default_layer_init("zeros"):
            pass


def test_yaml_row_takes_init_as_fourth_arg(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_INIT, raising=False)
    from ultralytics.nn.tasks import DetectionModel

    from pst_yolo.integration.model_parsing import PSTConfigError, cfg_dir

    text = (cfg_dir() / "yolo11-pst.yaml").read_text()
    assert "PST, [512, 2, 0.5]]" in text
    good = tmp_path / "yolo11n-pst-authors.yaml"
    good.write_text(text.replace("PST, [512, 2, 0.5]]", "PST, [512, 2, 0.5, authors]]"))
    model = DetectionModel(str(good), nc=3, verbose=False)
    assert [m.init for m in model.model if isinstance(m, PST)] == ["authors", "identity"]  # the row's, the default
    pinned = tmp_path / "yolo11n-pst-pinned.yaml"
    pinned.write_text(text.replace("PST, [512, 2, 0.5]]", "PST, [512, 2, 0.5, identity]]"))
    with default_layer_init("authors"):  # a row's own init wins over the default
        model = DetectionModel(str(pinned), nc=3, verbose=False)
    assert [m.init for m in model.model if isinstance(m, PST)] == ["identity", "authors"]
    bad = tmp_path / "yolo11n-pst-bad.yaml"
    bad.write_text(text.replace("PST, [512, 2, 0.5]]", "PST, [512, 2, 0.5, zeros]]"))
    with pytest.raises(
        PSTConfigError, match=r"layer 13 \(PST\): init \(the 4th arg\) must be one of authors, identity"
    ):
        DetectionModel(str(bad), nc=3, verbose=False)


def test_a_fused_layer_still_tells_its_identity_start():
    """Ultralytics' fuse folds BatchNorm into the convolution and drops ``bn``: a closed branch is then a zero conv."""
    from ultralytics.utils.torch_utils import fuse_conv_and_bn

    layers = {init: PST(64, 96, 64, n=1, e=0.5, init=init).eval() for init in ("identity", "authors")}
    for layer in layers.values():
        for block in layer._blocks():
            for conv in (block.attn.proj, block.mlp[1]):
                conv.conv = fuse_conv_and_bn(conv.conv, conv.bn)
                delattr(conv, "bn")
    assert layers["identity"].starts_as_identity() and not layers["authors"].starts_as_identity()
