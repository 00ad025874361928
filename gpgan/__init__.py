"""gpgan: GP-GAN image blending (Wu et al., ACM MM 2019).

Public entry points:

- :func:`gpgan.blend` — blend ``src`` into ``dst`` under ``mask`` with any method
  (implemented in :mod:`gpgan.blending`; the module is not called ``blend`` so that
  ``gpgan.blend`` stays the function).
- :func:`gpgan.poisson.gaussian_poisson` — one level of the Gaussian-Poisson equation.
"""

from .blending import METHODS, blend

__version__ = "0.1.0"
__all__ = ["blend", "METHODS", "__version__"]
