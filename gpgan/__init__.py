"""gpgan: GP-GAN image blending (Wu et al., ACM MM 2019).

Public entry points:

- :func:`gpgan.blend` — blend ``src`` into ``dst`` under ``mask`` with any method.
- :func:`gpgan.poisson.gaussian_poisson` — one level of the Gaussian-Poisson equation.
"""

__version__ = "0.1.0"


def blend(src, dst, mask, method="gp-gan", **options):
    """Blend ``src`` into ``dst`` where ``mask`` is 1; see :func:`gpgan.blend.blend`."""
    from .blend import blend as _blend

    return _blend(src, dst, mask, method=method, **options)
