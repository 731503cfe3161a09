"""PST(init=...): the authors' initialisation by default, an identity start on request (YAML 4th arg)."""

from __future__ import annotations

import pytest
import torch

from pst_yolo.nn.pst import PST

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_identity_init_makes_the_layer_its_convolutional_path():
    torch.manual_seed(0)
    layer = PST(64, 96, 64, n=2, e=0.5, k=4, init="identity").eval()
    x, upper = torch.rand(2, 64, 10, 9), torch.rand(2, 96, 5, 5)
    with torch.no_grad():
        a = layer.cv1(x)
        expected = layer.cv2(torch.cat([a, a, a], 1))  # every block passes its input through unchanged
        torch.testing.assert_close(layer([x, upper]), expected, rtol=0, atol=0)


def test_default_init_is_the_authors_and_state_dicts_are_interchangeable():
    torch.manual_seed(0)
    authors = PST(64, 96, 64, n=1, e=0.5)
    identity = PST(64, 96, 64, n=1, e=0.5, init="identity")
    assert authors.init == "authors"
    assert float(authors.attnlayer_0.attn.proj.bn.weight.detach().sum()) == 32  # BatchNorm's default scale, 1
    identity.load_state_dict(authors.state_dict(), strict=True)  # same names and shapes
    with pytest.raises(ValueError, match="init must be one of authors, identity"):
        PST(64, 96, 64, init="zeros")


def test_yaml_row_takes_init_as_fourth_arg(tmp_path):
    from ultralytics.nn.tasks import DetectionModel

    from pst_yolo.integration.model_parsing import PSTConfigError, cfg_dir

    text = (cfg_dir() / "yolo11-pst.yaml").read_text()
    assert "PST, [512, 2, 0.5]]" in text
    good = tmp_path / "yolo11n-pst-identity.yaml"
    good.write_text(text.replace("PST, [512, 2, 0.5]]", "PST, [512, 2, 0.5, identity]]"))
    model = DetectionModel(str(good), nc=3, verbose=False)
    assert [m.init for m in model.model if isinstance(m, PST)] == ["identity", "authors"]
    bad = tmp_path / "yolo11n-pst-bad.yaml"
    bad.write_text(text.replace("PST, [512, 2, 0.5]]", "PST, [512, 2, 0.5, zeros]]"))
    with pytest.raises(
        PSTConfigError, match=r"layer 13 \(PST\): init \(the 4th arg\) must be one of authors, identity"
    ):
        DetectionModel(str(bad), nc=3, verbose=False)
