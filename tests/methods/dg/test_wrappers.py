import torch
from torch import nn

from unseen.methods.dg.averaging import EMA, SWA


class _Holder:
    def __init__(self) -> None:
        self.network = nn.Linear(1, 1, bias=False)

    def set(self, w: float) -> None:
        with torch.no_grad():
            self.network.weight.fill_(w)


def test_swa_is_the_uniform_mean_of_iterates():
    h, swa = _Holder(), SWA()
    for step, w in enumerate([1.0, 2.0, 6.0]):
        h.set(w)
        swa.on_step(h, step)
    assert swa.final_network().weight.item() == 3.0


def test_ema_matches_hand_computation():
    h, ema = _Holder(), EMA({"ema_decay": 0.5})
    for step, w in enumerate([4.0, 0.0, 2.0]):
        h.set(w)
        ema.on_step(h, step)
    # 4 -> 0.5*4 + 0.5*0 = 2 -> 0.5*2 + 0.5*2 = 2
    assert ema.final_network().weight.item() == 2.0
