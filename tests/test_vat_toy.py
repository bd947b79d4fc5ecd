"""VAT where VAT is known to work (issue 21, item 7): properties a broken VAT would fail.

The full comparison (several seeds, eps chosen on validation) is benchmarks/vat_toy.py.
"""

import importlib.util
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rbcore.vat import virtual_adversarial_loss


@pytest.mark.parametrize("boundary, sign", [(0.2, 1.0), (0.8, -1.0)])
def test_lds_gradient_pushes_the_boundary_away_from_dense_unlabeled_data(boundary, sign):
    # Unlabeled points densest at x1 = 0.5; a logistic boundary at x1 = c. Gradient descent on
    # the LDS must move c away from the mode (down from 0.2, up from 0.8): the LDS is large
    # where samples sit near the boundary. A VAT with a wrong direction, sign or target fails.
    rng = np.random.default_rng(0)
    x = jnp.asarray(np.stack([rng.normal(0.5, 0.3, 4000), rng.normal(0, 1, 4000)], 1), jnp.float32)

    def lds(c):
        return virtual_adversarial_loss(
            lambda z: 4.0 * (z[:, 0] - c), x, key=jax.random.key(1), eps=0.2
        )

    assert float(lds(boundary)) > float(lds(0.5 - (boundary - 0.5) * 3))  # denser = larger LDS
    assert sign * float(jax.grad(lds)(jnp.float32(boundary))) > 0


def _vat_toy():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "vat_toy.py"
    spec = importlib.util.spec_from_file_location("vat_toy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vat_separates_two_circles_from_eight_labels_where_supervised_does_not():
    # Miyato et al. (2016, Fig. 2): 8 labels + 1,000 unlabeled points on two circles. The
    # supervised MLP's boundary cuts the circles; VAT's follows the gap between them.
    toy = _vat_toy()
    data = toy.toy_data("circles", 0)
    sup = toy.accuracy(toy.train(data, seed=0, eps=0.0, alpha=0.0), data["xt"], data["yt"])
    vat = toy.accuracy(toy.train(data, seed=0, eps=0.1, alpha=1.0), data["xt"], data["yt"])
    assert vat > 0.97 and vat - sup > 0.1, (sup, vat)


def test_sky_view_measures_eps_in_each_cutouts_sky_sigma():
    # vat_space "sky": inputs divided by each cutout's sky sigma per channel, so a unit step in
    # the view is one sky sigma of that cutout; the logits at the view's point are the model's.
    from rbcore.train.step import vat_view
    from rbcore.vat import sky_sigma_jax

    rng = np.random.default_rng(2)
    scale = np.array([0.01, 0.1, 1.0], np.float32)  # sky sigma per channel
    x = jnp.asarray(rng.normal(0.5, 1.0, (4, 29, 29, 3)).astype(np.float32) * scale)
    x = x.at[:, 10:19, 10:19, :].add(50.0)  # a bright source inside the frame moves no sigma
    s = np.asarray(sky_sigma_jax(x))[:, 0, 0, :]
    np.testing.assert_allclose(s, np.broadcast_to(scale, s.shape), rtol=0.15)

    def f(z):
        return jnp.sum(z, axis=(1, 2, 3))

    z, g = vat_view("sky", None, x, f)
    np.testing.assert_allclose(np.asarray(g(z)), np.asarray(f(x)), rtol=1e-5)
    assert np.allclose(np.asarray(z * sky_sigma_jax(x)), np.asarray(x), rtol=1e-5)
