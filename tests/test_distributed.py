"""Distributed data-parallel training (``hub.models.distributed``): two real CPU processes (gloo over loopback),
each reading its own shard of the real DSB2018 samples, end with the weights of one process trained on the same
batches. The network has no batch statistics here (a frozen encoder, no decoder BatchNorm), so only the order of
floating-point sums may tell them apart; with BatchNorm each rank normalises its own half batch."""

from __future__ import annotations

import torch
import yaml
from safetensors.torch import load_file

from hub.models import TrainConfig, train

CFG = dict(
    name="ddp-tiny",
    task="semantic-segmentation",
    backbone="test_resnet",
    options={"depth": 3, "decoder_channels": 8},
    patch=64,
    batch_size=4,
    steps_per_epoch=3,
    epochs=1,
    val_batches=1,
    freeze_encoder=True,  # BatchNorm in eval mode: no per-rank batch statistics
    regularization="none",  # no BatchNorm in the decoder
    optimizer="sgd",  # an update proportional to the gradient (Adam's sign-like first steps would hide it)
    lr=0.05,
    seed=5,
    workers=0,
)


def _weights(folder) -> dict[str, torch.Tensor]:
    """The trained parameters (not BatchNorm's running statistics) of a saved model."""
    state = load_file(folder / "weights.safetensors")
    return {k: v.float() for k, v in state.items() if v.is_floating_point() and "running_" not in k}


def test_two_processes_train_the_weights_of_one_within_tolerance(built, tmp_path, cli):
    cfg = TrainConfig(dataset=str(built("dsb2018-fluo")), **CFG)
    train(cfg, tmp_path / "one")
    train(cfg.model_copy(update={"lr": 1e-12}), tmp_path / "start")  # where the seed starts them
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(cfg.model_dump(mode="json", exclude_defaults=True)))
    two = cli("models", "train", "--recipe", str(recipe), "--out", str(tmp_path / "two"), "--nproc", "2", "--json")
    assert two.returncode == 0, two.stderr
    card = yaml.safe_load((tmp_path / "two" / "card.yaml").read_text())
    assert card["training"]["hyperparameters"]["processes"] == 2
    one, two_, start = _weights(tmp_path / "one"), _weights(tmp_path / "two"), _weights(tmp_path / "start")
    assert one.keys() == two_.keys() == start.keys()
    moved = torch.cat([(one[k] - start[k]).ravel() for k in one]).norm().item()
    apart = torch.cat([(one[k] - two_[k]).ravel() for k in one]).norm().item()
    assert moved > 1e-3, "training changed the weights"
    assert apart < 1e-3 * moved, f"two processes end {apart:.2e} from one process, which moved {moved:.2e}"
